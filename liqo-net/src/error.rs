//! The crate's error type.

use ipnetwork::IpNetwork;

/// Errors returned by this crate.
///
/// One enum for the whole crate, so that [`TunnelBackend`](crate::TunnelBackend) stays
/// object safe: a third-party backend reports its own failures as [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A network interface name the kernel would refuse (or that is unsafe to put in an
    /// nftables script).
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterfaceName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A key that is not 32 bytes encoded in standard base64 (the encoding `wg` uses).
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why the key was rejected.
        reason: String,
    },

    /// An MTU outside what [`InterfaceSpec::validate`](crate::tunnel::InterfaceSpec::validate)
    /// accepts.
    #[error("invalid MTU {mtu}")]
    InvalidMtu {
        /// The rejected MTU.
        mtu: u32,
    },

    /// A peer or status was requested before [`TunnelBackend::ensure_interface`] created the
    /// interface.
    ///
    /// [`TunnelBackend::ensure_interface`]: crate::TunnelBackend::ensure_interface
    #[error("tunnel interface not created yet")]
    NoInterface,

    /// A CIDR of an address family this crate cannot handle there (the gateway remapping
    /// tables are IPv4 only, as upstream's).
    #[error("unsupported address family for {cidr}: {what}")]
    UnsupportedFamily {
        /// The offending CIDR.
        cidr: IpNetwork,
        /// What does not support it.
        what: &'static str,
    },

    /// The WireGuard backend failed: `context` says what it was doing, the source is the
    /// error of `defguard_wireguard_rs`, of the system or of the blocking task.
    #[error("wireguard: {context}")]
    WireGuard {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: liqo_core::BoxError,
    },

    /// The UAPI socket of a userspace WireGuard interface with this name answers: another
    /// live process (or another backend in this one) manages an interface of that name.
    /// Sockets live in `/var/run/wireguard`, shared by all network namespaces, so names must
    /// be unique per host.
    #[error(
        "wireguard interface {name} is managed by another live process (its UAPI socket answers)"
    )]
    InterfaceBusy {
        /// The interface name.
        name: String,
    },

    /// A backend that supports a single peer was asked to add a second one (plain VXLAN has
    /// exactly one remote endpoint).
    #[error(
        "the {backend} backend supports a single peer: remove peer {existing} before adding {requested}"
    )]
    TooManyPeers {
        /// The backend's name.
        backend: &'static str,
        /// The public key of the peer already configured.
        existing: String,
        /// The public key of the refused peer.
        requested: String,
    },

    /// The kernel cannot create links of this overlay type (e.g. no `geneve` module).
    #[error("the kernel does not support {kind} links ({reason}); use another overlay type")]
    UnsupportedOverlay {
        /// The overlay type (`vxlan`, `geneve`).
        kind: &'static str,
        /// What the kernel said.
        reason: String,
    },

    /// An overlay or VXLAN tunnel specification that cannot work; the message says what to
    /// fix.
    #[error("invalid overlay configuration: {0}")]
    InvalidOverlay(String),

    /// An existing system object (link, rule, route) in a state this crate cannot read.
    #[error("unexpected output of `{command}`: {reason}")]
    UnexpectedOutput {
        /// The command whose output could not be understood.
        command: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A system command (`ip`, `nft`, a sysctl write) failed.
    #[error("{command}: {message}")]
    Command {
        /// The command line (or the operation) that failed.
        command: String,
        /// What went wrong, usually the program's stderr.
        message: String,
    },

    /// A call to the Kubernetes API failed.
    #[error("{context}: {}", liqo_core::error::KubeErrorExt::describe(source))]
    Kube {
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A gateway configuration (from resources, flags or a file) that cannot work; the
    /// message says what to fix.
    #[error("invalid gateway configuration: {0}")]
    InvalidConfig(String),

    /// Error from a third-party implementation of this crate's trait.
    #[error("backend error: {0}")]
    Backend(#[source] liqo_core::BoxError),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
