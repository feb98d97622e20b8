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

    /// Error from a third-party implementation of this crate's trait.
    #[error("backend error: {0}")]
    Backend(#[source] liqo_core::BoxError),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
