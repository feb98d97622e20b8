//! The default [`TunnelBackend`]: WireGuard, through `defguard_wireguard_rs`.
//!
//! [`WireGuardBackend`] drives either the Linux kernel implementation (generic netlink, when
//! the `wireguard` module is usable) or the embedded userspace implementation (boringtun,
//! running inside this process, configured over its UAPI socket), picked at construction
//! with [`Implementation`]. One binary thus works on hosts with and without the module.
//!
//! # What it does and does not do
//!
//! - It creates the interface with its address, MTU and listen port, and adds, updates and
//!   removes peers. The address gives the connected route of the tunnel network; **it
//!   installs no other route** (not even for the peers' allowed IPs, which default to
//!   `0.0.0.0/0`): routing is the gateway's job, in its own table.
//! - Every call into `defguard_wireguard_rs` (synchronous netlink and UAPI I/O) runs in
//!   [`tokio::task::spawn_blocking`]; calls are serialized by an internal lock.
//! - It works in the network namespace of the threads that run those blocking tasks, i.e.
//!   of the thread that created the runtime's blocking threads. A gateway runs in the network
//!   namespace of its pod anyway; a test that wants one backend per namespace builds a
//!   current-thread runtime on a thread that entered the namespace first.
//!
//! # Userspace implementation: lifetime, sockets and signals
//!
//! - The userspace tunnel lives in this process: it disappears when the backend is dropped,
//!   [`teardown`](TunnelBackend::teardown) is called, or the process dies. A kernel
//!   interface outlives the process until [`teardown`](TunnelBackend::teardown).
//! - Its UAPI socket is `/var/run/wireguard/<interface>.sock` ([`uapi_socket_path`]). That
//!   directory is shared by all network namespaces of the host, so **interface names must be
//!   unique per host** when several userspace backends run on it.
//! - A process killed with SIGKILL leaves its socket behind. Before creating the interface
//!   the backend removes such a stale socket (nobody answers on it,
//!   [`remove_stale_socket`]); a socket that answers belongs to a live process and makes
//!   [`ensure_interface`](TunnelBackend::ensure_interface) fail with
//!   [`Error::InterfaceBusy`] instead of stealing its interface.
//! - boringtun blocks SIGINT and SIGTERM (`sigprocmask`) in the thread that creates the
//!   device and reads them from a `signalfd`, so that a signal stops its worker threads but
//!   **not** the process, leaving the process running without a tunnel. The backend
//!   therefore creates the device on a dedicated short-lived thread: the blocked mask stays
//!   with that thread and boringtun's workers, never reaches the tokio threads, and the
//!   signals are delivered to the rest of the process as usual. A gateway shuts down cleanly
//!   by handling them itself and calling [`teardown`](TunnelBackend::teardown):
//!
//! ```no_run
//! use liqo_net::TunnelBackend;
//! use liqo_net::wireguard::{Implementation, WireGuardBackend};
//! use tokio::signal::unix::{SignalKind, signal};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tunnel = WireGuardBackend::new(Implementation::Auto);
//! // ... ensure_interface, upsert_peer, reconcile ...
//! let mut term = signal(SignalKind::terminate())?;
//! tokio::select! {
//!     _ = term.recv() => {}
//!     _ = tokio::signal::ctrl_c() => {}
//! }
//! tunnel.teardown().await?; // no interface and no socket left behind
//! # Ok(()) }
//! ```
//!
//! - boringtun cannot modify a configured peer (it panics in a worker thread, and the UAPI
//!   request is never answered). [`upsert_peer`](TunnelBackend::upsert_peer) therefore leaves
//!   an unchanged peer alone and replaces a changed one (remove, then add), which starts a
//!   new session with a new handshake. The kernel implementation updates peers in place.
//!
//! Without a handler the default action of the signal ends the process: the userspace
//! interface goes with it, and its stale socket is removed at the next start.
//!
//! # Example
//!
//! ```no_run
//! use liqo_net::TunnelBackend;
//! use liqo_net::tunnel::{InterfaceSpec, PeerSpec};
//! use liqo_net::wireguard::{Implementation, WireGuardBackend};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Needs root (CAP_NET_ADMIN), and /dev/net/tun for the userspace implementation.
//! let tunnel = WireGuardBackend::new(Implementation::Auto);
//! let keys = tunnel.generate_keys().await?;
//! let peer_public_key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".parse()?;
//!
//! // MTU 1340 and port 51840 unless told otherwise.
//! let spec = InterfaceSpec::new("169.254.18.1/30".parse()?, keys.private);
//! tunnel.ensure_interface(&spec).await?;
//! let peer = PeerSpec::new(peer_public_key)
//!     .with_endpoint("192.0.2.7:51840".parse()?)
//!     .with_allowed_ips(["169.254.18.2/32".parse()?, "10.1.0.0/16".parse()?]);
//! tunnel.upsert_peer(&peer).await?;
//!
//! let status = tunnel.status().await?;
//! println!("{:?}", status.peer(&peer.public_key).and_then(|p| p.last_handshake));
//! tunnel.teardown().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use defguard_wireguard_rs::error::WireguardInterfaceError;
use defguard_wireguard_rs::key::Key;
use defguard_wireguard_rs::net::IpAddrMask;
use defguard_wireguard_rs::peer::Peer;
use defguard_wireguard_rs::{
    InterfaceConfiguration, Kernel, Userspace, WGApi, WireguardInterfaceApi,
};
use ipnetwork::IpNetwork;

use crate::tunnel::{
    InterfaceSpec, KeyPair, PeerSpec, PeerStatus, PrivateKey, PublicKey, TunnelBackend,
    TunnelStatus,
};
use crate::{Error, Result};

/// Directory of the UAPI sockets of userspace WireGuard interfaces (shared by all network
/// namespaces of a host).
pub const UAPI_SOCKET_DIR: &str = "/var/run/wireguard";

/// How long [`TunnelBackend::teardown`] waits for a userspace interface to disappear once
/// its device threads were told to exit.
const LINK_GONE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one call into the device (UAPI); a userspace device that stopped never
/// answers.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the answer of a live userspace device to [`device_answers`].
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which WireGuard implementation a [`WireGuardBackend`] uses.
///
/// Parsed from and displayed as `auto`, `kernel` or `userspace`, for a command-line flag.
///
/// ```
/// use liqo_net::wireguard::Implementation;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert_eq!("userspace".parse::<Implementation>()?, Implementation::Userspace);
/// assert_eq!(Implementation::default().to_string(), "auto");
/// assert!("boringtun".parse::<Implementation>().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// The kernel implementation if [`kernel_module_available`], the userspace one otherwise
    /// (also when creating the kernel interface fails).
    #[default]
    Auto,
    /// The Linux kernel module, over generic netlink; fails where the module is missing.
    Kernel,
    /// The embedded userspace implementation (boringtun in this process): needs
    /// `/dev/net/tun` and a writable [`UAPI_SOCKET_DIR`].
    Userspace,
}

impl Implementation {
    /// The flag value: `auto`, `kernel` or `userspace`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        }
    }
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`Implementation`] from a string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown WireGuard implementation {0:?} (expected auto, kernel or userspace)")]
pub struct ParseImplementationError(String);

impl FromStr for Implementation {
    type Err = ParseImplementationError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "kernel" => Ok(Self::Kernel),
            "userspace" => Ok(Self::Userspace),
            _ => Err(ParseImplementationError(s.to_owned())),
        }
    }
}

/// Whether the WireGuard kernel module is loaded or built in (`/sys/module/wireguard`).
///
/// A module that is available but not loaded yet counts as missing: [`Implementation::Auto`]
/// then uses the userspace implementation.
///
/// ```
/// let kernel = liqo_net::wireguard::kernel_module_available();
/// println!("wireguard module: {kernel}");
/// ```
#[must_use]
pub fn kernel_module_available() -> bool {
    Path::new("/sys/module/wireguard").exists()
}

/// The UAPI socket of the userspace interface `name`.
///
/// ```
/// use liqo_net::wireguard::uapi_socket_path;
///
/// assert_eq!(
///     uapi_socket_path("liqo-tunnel").to_str(),
///     Some("/var/run/wireguard/liqo-tunnel.sock")
/// );
/// ```
#[must_use]
pub fn uapi_socket_path(name: &str) -> PathBuf {
    Path::new(UAPI_SOCKET_DIR).join(format!("{name}.sock"))
}

/// Removes the UAPI socket of the userspace interface `name` if it is stale (left behind by
/// a killed process: nobody answers on it). Returns whether a socket was removed.
///
/// [`WireGuardBackend`] calls it before creating a userspace interface; a gateway may call
/// it at start-up too. Blocking (a connect attempt and a file removal).
///
/// ```no_run
/// # fn main() -> Result<(), liqo_net::Error> {
/// let removed = liqo_net::wireguard::remove_stale_socket("liqo-tunnel")?;
/// println!("stale socket removed: {removed}");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::InterfaceBusy`] if a live process answers on the socket;
/// [`Error::InvalidInterfaceName`] for a name that is not a valid interface name (it becomes
/// part of a path); [`Error::WireGuard`] if the socket cannot be removed.
pub fn remove_stale_socket(name: &str) -> Result<bool> {
    crate::tunnel::validate_interface_name(name)?;
    let path = uapi_socket_path(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(wg_err(format!("inspecting {}", path.display()), e));
        }
        Ok(_) => {}
    }
    match UnixStream::connect(&path) {
        Ok(_) => Err(Error::InterfaceBusy {
            name: name.to_owned(),
        }),
        Err(_) => match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(wg_err(
                format!("removing stale socket {}", path.display()),
                e,
            )),
        },
    }
}

/// The public key of a private key (X25519, as `wg pubkey` computes it).
///
/// ```
/// use liqo_net::tunnel::{PrivateKey, PublicKey};
/// use liqo_net::wireguard::public_key_of;
///
/// # fn main() -> Result<(), liqo_net::Error> {
/// // Alice's key pair from RFC 7748, section 6.1.
/// let private: PrivateKey = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=".parse()?;
/// let public: PublicKey = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=".parse()?;
/// assert_eq!(public_key_of(&private), public);
/// # Ok(()) }
/// ```
#[must_use]
pub fn public_key_of(private: &PrivateKey) -> PublicKey {
    PublicKey::from_bytes(Key::new(*private.as_bytes()).public_key().as_array())
}

/// The default [`TunnelBackend`]: WireGuard, kernel or embedded userspace implementation.
///
/// See the [module documentation](self) for the implementation choice, the socket and
/// signal handling, and a complete example. Dropping the backend stops a userspace tunnel
/// (without waiting for it); prefer [`teardown`](TunnelBackend::teardown).
///
/// ```
/// use liqo_net::TunnelBackend;
/// use liqo_net::wireguard::{Implementation, WireGuardBackend};
///
/// let tunnel = WireGuardBackend::new(Implementation::Userspace);
/// assert_eq!(tunnel.implementation(), Implementation::Userspace);
/// assert_eq!(tunnel.name(), "wireguard-userspace");
/// ```
pub struct WireGuardBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for WireGuardBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireGuardBackend")
            .field("requested", &self.inner.requested)
            .field("implementation", &self.implementation())
            .finish_non_exhaustive()
    }
}

impl Default for WireGuardBackend {
    /// A backend with [`Implementation::Auto`].
    fn default() -> Self {
        Self::new(Implementation::Auto)
    }
}

impl WireGuardBackend {
    /// A backend using `implementation`; [`Implementation::Auto`] is resolved here, with
    /// [`kernel_module_available`]. Touches nothing: the interface is created by
    /// [`ensure_interface`](TunnelBackend::ensure_interface).
    ///
    /// ```
    /// use liqo_net::wireguard::{Implementation, WireGuardBackend, kernel_module_available};
    ///
    /// let tunnel = WireGuardBackend::new(Implementation::Auto);
    /// let expected = if kernel_module_available() {
    ///     Implementation::Kernel
    /// } else {
    ///     Implementation::Userspace
    /// };
    /// assert_eq!(tunnel.implementation(), expected);
    /// ```
    #[must_use]
    pub fn new(implementation: Implementation) -> Self {
        let kernel = match implementation {
            Implementation::Auto => kernel_module_available(),
            Implementation::Kernel => true,
            Implementation::Userspace => false,
        };
        Self {
            inner: Arc::new(Inner {
                requested: implementation,
                kernel: AtomicBool::new(kernel),
                state: Mutex::new(State::default()),
                userspace: Mutex::new(None),
            }),
        }
    }

    /// The implementation in use: [`Implementation::Kernel`] or
    /// [`Implementation::Userspace`], never `Auto`. With `Auto` it may change from kernel to
    /// userspace when creating the kernel interface fails.
    ///
    /// ```
    /// use liqo_net::wireguard::{Implementation, WireGuardBackend};
    ///
    /// let tunnel = WireGuardBackend::new(Implementation::Kernel);
    /// assert_eq!(tunnel.implementation(), Implementation::Kernel);
    /// ```
    #[must_use]
    pub fn implementation(&self) -> Implementation {
        self.inner.implementation()
    }

    /// The implementation that was asked for at construction.
    ///
    /// ```
    /// use liqo_net::wireguard::{Implementation, WireGuardBackend};
    ///
    /// let tunnel = WireGuardBackend::new(Implementation::Auto);
    /// assert_eq!(tunnel.requested(), Implementation::Auto);
    /// ```
    #[must_use]
    pub fn requested(&self) -> Implementation {
        self.inner.requested
    }

    /// Runs `f` on the inner state in a blocking task.
    async fn blocking<T, F>(&self, context: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || f(&inner));
        match tokio::time::timeout(CALL_TIMEOUT, task).await {
            Ok(joined) => {
                joined.map_err(|e| wg_err(format!("{context}: blocking task failed"), e))?
            }
            Err(_) => Err(wg_err(
                context,
                "no answer within 15 s: the userspace device stopped (boringtun stops by itself \
                 when it catches SIGTERM or SIGINT)",
            )),
        }
    }
}

#[async_trait]
impl TunnelBackend for WireGuardBackend {
    fn name(&self) -> &'static str {
        match self.implementation() {
            Implementation::Kernel => "wireguard-kernel",
            _ => "wireguard-userspace",
        }
    }

    async fn generate_keys(&self) -> Result<KeyPair> {
        // Pure computation (X25519 over fresh OS randomness): nothing to move off the runtime.
        let private = PrivateKey::from_bytes(Key::generate().as_array());
        let public = public_key_of(&private);
        Ok(KeyPair::new(private, public))
    }

    async fn ensure_interface(&self, spec: &InterfaceSpec) -> Result<()> {
        spec.validate()?;
        let spec = spec.clone();
        self.blocking("ensure_interface", move |inner| inner.ensure(&spec))
            .await
    }

    async fn upsert_peer(&self, peer: &PeerSpec) -> Result<()> {
        let peer = peer.clone();
        self.blocking("upsert_peer", move |inner| inner.upsert_peer(&peer))
            .await
    }

    async fn remove_peer(&self, key: &PublicKey) -> Result<()> {
        let key = *key;
        self.blocking("remove_peer", move |inner| inner.remove_peer(&key))
            .await
    }

    async fn status(&self) -> Result<TunnelStatus> {
        self.blocking("status", Inner::status).await
    }

    async fn teardown(&self) -> Result<()> {
        self.blocking("teardown", Inner::teardown).await
    }

    /// A userspace device must still answer on its UAPI socket: boringtun stops its device
    /// by itself when it catches SIGTERM or SIGINT, which may reach it before the process's
    /// own handler.
    async fn check(&self) -> Result<()> {
        let Some(name) = self.inner.userspace_name() else {
            return Ok(());
        };
        let probe = name.clone();
        let answers = tokio::task::spawn_blocking(move || device_answers(&probe, PROBE_TIMEOUT))
            .await
            .unwrap_or(false);
        if answers {
            Ok(())
        } else {
            Err(wg_err(
                format!("checking userspace interface {name}"),
                "the device no longer answers on its UAPI socket (stopped by a signal, or its \
                 socket was removed)",
            ))
        }
    }
}

/// Whether the userspace device `name` answers a UAPI `get` within `timeout` (a device that
/// stopped may leave a socket that accepts connections but never answers).
///
/// ```no_run
/// use std::time::Duration;
///
/// let alive = liqo_net::wireguard::device_answers("liqo-tunnel", Duration::from_secs(2));
/// println!("liqo-tunnel answers: {alive}");
/// ```
#[must_use]
pub fn device_answers(name: &str, timeout: Duration) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = UnixStream::connect(uapi_socket_path(name)) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
        || stream.write_all(b"get=1\n\n").is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if n > 0)
}

/// The state shared with the blocking tasks.
struct Inner {
    requested: Implementation,
    /// Whether the kernel implementation is in use (may flip to userspace with `Auto`).
    kernel: AtomicBool,
    state: Mutex<State>,
    /// The name of the userspace device, if one is up; kept apart from `state` so that
    /// [`TunnelBackend::check`] never waits behind a call stuck on a dead device.
    userspace: Mutex<Option<String>>,
}

#[derive(Default)]
struct State {
    device: Option<Device>,
    /// The spec the device was configured with.
    applied: Option<InterfaceSpec>,
    /// The peers as last upserted, re-applied when the interface is recreated.
    peers: BTreeMap<PublicKey, PeerSpec>,
}

/// A created interface; the userspace one owns the boringtun device.
enum Device {
    Kernel { name: String, api: WGApi<Kernel> },
    Userspace { name: String, api: WGApi<Userspace> },
}

impl Device {
    fn name(&self) -> &str {
        match self {
            Self::Kernel { name, .. } | Self::Userspace { name, .. } => name,
        }
    }

    fn api(&self) -> &dyn WireguardInterfaceApi {
        match self {
            Self::Kernel { api, .. } => api,
            Self::Userspace { api, .. } => api,
        }
    }
}

impl Inner {
    fn implementation(&self) -> Implementation {
        if self.kernel.load(Ordering::Relaxed) {
            Implementation::Kernel
        } else {
            Implementation::Userspace
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-written that matters: the next
        // ensure_interface re-checks the device.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ensure(&self, spec: &InterfaceSpec) -> Result<()> {
        let mut state = self.lock();
        if let Some(device) = &state.device {
            // Unchanged and still there (nobody deleted it): nothing to do, which keeps the
            // sessions and counters of the peers.
            if state.applied.as_ref() == Some(spec) && device.api().read_interface_data().is_ok() {
                return Ok(());
            }
            remove_device(&mut state)?;
        }
        let device = self.create(&spec.name)?;
        let peers = state.peers.values().map(to_peer).collect::<Vec<_>>();
        let config = InterfaceConfiguration {
            name: spec.name.clone(),
            prvkey: Key::new(*spec.private_key.as_bytes()).to_string(),
            addresses: vec![to_mask(&spec.address)],
            port: spec.listen_port,
            peers,
            mtu: Some(spec.mtu),
            fwmark: None,
        };
        if let Err(e) = device.api().configure_interface(&config) {
            // Leave nothing half-configured behind.
            let _ = destroy(device);
            return Err(wg_err(format!("configuring interface {}", spec.name), e));
        }
        let userspace = matches!(device, Device::Userspace { .. }).then(|| spec.name.clone());
        state.device = Some(device);
        state.applied = Some(spec.clone());
        *self
            .userspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = userspace;
        Ok(())
    }

    /// Creates the interface with the implementation in use (kernel first with `Auto`).
    fn create(&self, name: &str) -> Result<Device> {
        if self.kernel.load(Ordering::Relaxed) {
            let created = WGApi::<Kernel>::new(name).and_then(|mut api| {
                api.create_interface()?;
                Ok(api)
            });
            match created {
                Ok(api) => {
                    return Ok(Device::Kernel {
                        name: name.to_owned(),
                        api,
                    });
                }
                Err(e) if self.requested != Implementation::Auto => {
                    return Err(wg_err(
                        format!(
                            "creating kernel interface {name} (is the wireguard module available?)"
                        ),
                        e,
                    ));
                }
                // Auto: fall back to the userspace implementation for good.
                Err(_) => self.kernel.store(false, Ordering::Relaxed),
            }
        }
        remove_stale_socket(name)?;
        // boringtun blocks SIGINT and SIGTERM in the creating thread (its workers inherit the
        // mask): keep that mask away from the runtime's threads.
        let owned = name.to_owned();
        let created = std::thread::Builder::new()
            .name("liqo-wg-create".to_owned())
            .spawn(move || {
                let mut api = WGApi::<Userspace>::new(owned)?;
                api.create_interface()?;
                Ok::<_, WireguardInterfaceError>(api)
            })
            .map_err(|e| wg_err("spawning the interface creation thread", e))?
            .join()
            .map_err(|_| {
                wg_err(
                    format!("creating userspace interface {name}"),
                    "creation thread panicked",
                )
            })?;
        match created {
            Ok(api) => Ok(Device::Userspace {
                name: name.to_owned(),
                api,
            }),
            Err(e) => Err(wg_err(
                format!(
                    "creating userspace interface {name} (needs CAP_NET_ADMIN and /dev/net/tun)"
                ),
                e,
            )),
        }
    }

    fn upsert_peer(&self, peer: &PeerSpec) -> Result<()> {
        let mut state = self.lock();
        let device = state.device.as_ref().ok_or(Error::NoInterface)?;
        let key = to_key(&peer.public_key);
        let present = device
            .api()
            .read_interface_data()
            .map_err(|e| wg_err(format!("reading interface {}", device.name()), e))?
            .peers
            .contains_key(&key);
        if present && state.peers.get(&peer.public_key) == Some(peer) {
            // Unchanged: touching it would reset the userspace session for nothing.
            return Ok(());
        }
        // boringtun cannot modify a peer (it panics in its worker thread, which then never
        // answers the UAPI request), and WireGuard cannot forget an endpoint: in both cases
        // replace the peer. The kernel updates a peer in place otherwise.
        let replace = present
            && (matches!(device, Device::Userspace { .. })
                || (peer.endpoint.is_none()
                    && state
                        .peers
                        .get(&peer.public_key)
                        .is_none_or(|old| old.endpoint.is_some())));
        if replace {
            device
                .api()
                .remove_peer(&key)
                .map_err(|e| wg_err(format!("removing peer {}", peer.public_key), e))?;
        }
        device
            .api()
            .configure_peer(&to_peer(peer))
            .map_err(|e| wg_err(format!("configuring peer {}", peer.public_key), e))?;
        state.peers.insert(peer.public_key, peer.clone());
        Ok(())
    }

    fn remove_peer(&self, key: &PublicKey) -> Result<()> {
        let mut state = self.lock();
        state.peers.remove(key);
        if let Some(device) = &state.device {
            device
                .api()
                .remove_peer(&to_key(key))
                .map_err(|e| wg_err(format!("removing peer {key}"), e))?;
        }
        Ok(())
    }

    fn status(&self) -> Result<TunnelStatus> {
        let state = self.lock();
        let mut status = TunnelStatus::default();
        let Some(device) = &state.device else {
            return Ok(status);
        };
        let host = device
            .api()
            .read_interface_data()
            .map_err(|e| wg_err(format!("reading interface {}", device.name()), e))?;
        status.interface = Some(device.name().to_owned());
        status.peers = host
            .peers
            .values()
            .map(|peer| {
                let mut s = PeerStatus::new(PublicKey::from_bytes(peer.public_key.as_array()));
                s.endpoint = peer.endpoint;
                // UAPI reports "never" as time 0.
                s.last_handshake = peer
                    .last_handshake
                    .filter(|at| *at > SystemTime::UNIX_EPOCH);
                s.rx_bytes = peer.rx_bytes;
                s.tx_bytes = peer.tx_bytes;
                s
            })
            .collect();
        status.peers.sort_by_key(|p| p.public_key);
        Ok(status)
    }

    fn userspace_name(&self) -> Option<String> {
        self.userspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn teardown(&self) -> Result<()> {
        let mut state = self.lock();
        state.peers.clear();
        *self
            .userspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        remove_device(&mut state)
    }
}

/// Removes the device of `state`, if any.
fn remove_device(state: &mut State) -> Result<()> {
    state.applied = None;
    match state.device.take() {
        Some(device) => destroy(device),
        None => Ok(()),
    }
}

/// Removes the interface (and, for userspace, stops the device and removes its socket).
fn destroy(device: Device) -> Result<()> {
    match device {
        Device::Kernel { name, api } => {
            // defguard also clears the interface's DNS settings first, which fails on hosts
            // with neither systemd-resolved nor resolvconf, before deleting the link: fall
            // back to `ip link delete` then.
            let removed = api.remove_interface();
            if link_exists(&name) {
                let deleted = Command::new("ip")
                    .args(["link", "delete", "dev", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !deleted && link_exists(&name) {
                    return Err(match removed {
                        Err(e) => wg_err(format!("removing kernel interface {name}"), e),
                        Ok(()) => wg_err(
                            format!("removing kernel interface {name}"),
                            "the link is still present",
                        ),
                    });
                }
            }
            Ok(())
        }
        Device::Userspace { name, api } => {
            // Dropping the device handle tells boringtun's threads to exit and removes the
            // UAPI socket; the TUN link goes away when the last thread has closed its queue.
            // (defguard's remove_interface would also try to clear DNS settings, which fails
            // on hosts without a DNS manager, and the link would stay anyway.)
            drop(api);
            match std::fs::remove_file(uapi_socket_path(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(wg_err(format!("removing the socket of {name}"), e)),
            }
            let deadline = Instant::now() + LINK_GONE_TIMEOUT;
            while link_exists(&name) {
                if Instant::now() >= deadline {
                    return Err(wg_err(
                        format!("removing userspace interface {name}"),
                        "the link is still present after 5 s",
                    ));
                }
                #[allow(clippy::disallowed_methods)] // runs in spawn_blocking, off the runtime
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
    }
}

/// Whether a link named `name` exists in the network namespace of the calling thread
/// (`/proc/thread-self/net/dev`; `/sys/class/net` shows the namespace sysfs was mounted in).
/// False when that file cannot be read.
fn link_exists(name: &str) -> bool {
    std::fs::read_to_string("/proc/thread-self/net/dev").is_ok_and(|dev| {
        dev.lines()
            .skip(2)
            .filter_map(|line| line.split_once(':'))
            .any(|(link, _)| link.trim() == name)
    })
}

fn to_key(key: &PublicKey) -> Key {
    Key::new(*key.as_bytes())
}

fn to_mask(net: &IpNetwork) -> IpAddrMask {
    IpAddrMask::new(net.ip(), net.prefix())
}

/// The keepalive in whole seconds as WireGuard takes it: 0 is off, a fraction rounds up.
fn keepalive_secs(interval: Option<Duration>) -> u16 {
    interval.map_or(0, |d| {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        u16::try_from(secs).unwrap_or(u16::MAX)
    })
}

fn to_peer(spec: &PeerSpec) -> Peer {
    let mut peer = Peer::new(to_key(&spec.public_key));
    peer.endpoint = spec.endpoint;
    peer.allowed_ips = spec.allowed_ips.iter().map(to_mask).collect();
    // Always explicit, so that an upsert without keepalive turns a previous one off.
    peer.persistent_keepalive_interval = Some(keepalive_secs(spec.persistent_keepalive));
    peer
}

fn wg_err(context: impl Into<String>, source: impl Into<liqo_core::BoxError>) -> Error {
    Error::WireGuard {
        context: context.into(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    #[tokio::test]
    async fn generated_keys_are_a_real_x25519_pair() {
        let backend = WireGuardBackend::new(Implementation::Userspace);
        let a = backend.generate_keys().await.unwrap();
        let b = backend.generate_keys().await.unwrap();
        assert_ne!(a.private, b.private);
        assert_eq!(a.public, public_key_of(&a.private));
        assert_ne!(a.public.as_bytes(), a.private.as_bytes());
        // The RFC 7748 (section 6.1) vector for Bob.
        let bob: PrivateKey = "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os="
            .parse()
            .unwrap();
        assert_eq!(
            public_key_of(&bob).to_base64(),
            "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
        );
    }

    #[test]
    fn implementation_flag_roundtrip() {
        for imp in [
            Implementation::Auto,
            Implementation::Kernel,
            Implementation::Userspace,
        ] {
            assert_eq!(imp.to_string().parse::<Implementation>().unwrap(), imp);
        }
        assert_eq!(
            " Kernel ".parse::<Implementation>().unwrap(),
            Implementation::Kernel
        );
        let err = "wg-go".parse::<Implementation>().unwrap_err();
        assert!(err.to_string().contains("wg-go"), "{err}");
    }

    #[tokio::test]
    async fn no_interface_before_ensure() {
        let backend = WireGuardBackend::new(Implementation::Userspace);
        assert_eq!(backend.name(), "wireguard-userspace");
        assert_eq!(backend.status().await.unwrap(), TunnelStatus::default());
        let peer = PeerSpec::new(PublicKey::from_bytes([5; 32]));
        assert!(matches!(
            backend.upsert_peer(&peer).await,
            Err(Error::NoInterface)
        ));
        backend.remove_peer(&peer.public_key).await.unwrap();
        backend.teardown().await.unwrap();
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn invalid_spec_is_refused_before_touching_the_system() {
        let backend = WireGuardBackend::new(Implementation::Userspace);
        let spec = InterfaceSpec::new(
            "10.99.0.1/30".parse().unwrap(),
            PrivateKey::from_bytes([1; 32]),
        )
        .with_name("bad/name");
        assert!(matches!(
            backend.ensure_interface(&spec).await,
            Err(Error::InvalidInterfaceName { .. })
        ));
    }

    #[test]
    fn peer_conversion() {
        let spec = PeerSpec::new(PublicKey::from_bytes([9; 32]))
            .with_endpoint("192.0.2.1:51840".parse().unwrap())
            .with_allowed_ips([
                "10.99.0.2/32".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ])
            .with_persistent_keepalive(Some(Duration::from_millis(1500)));
        let uapi = to_peer(&spec).as_uapi_update();
        assert!(
            uapi.contains(&format!("public_key={}\n", "09".repeat(32))),
            "{uapi}"
        );
        assert!(uapi.contains("endpoint=192.0.2.1:51840\n"), "{uapi}");
        assert!(uapi.contains("persistent_keepalive_interval=2\n"), "{uapi}");
        assert!(
            uapi.contains("allowed_ip=10.99.0.2/32\nallowed_ip=10.1.0.0/16\n"),
            "{uapi}"
        );

        let off = spec.with_persistent_keepalive(None);
        assert_eq!(to_peer(&off).persistent_keepalive_interval, Some(0));
        assert_eq!(keepalive_secs(Some(Duration::from_secs(1 << 20))), u16::MAX);
        assert_eq!(keepalive_secs(Some(Duration::ZERO)), 0);
    }

    #[test]
    fn stale_socket_names_are_validated() {
        assert!(matches!(
            remove_stale_socket("../etc"),
            Err(Error::InvalidInterfaceName { .. })
        ));
    }

    #[test]
    fn link_lookup_in_this_namespace() {
        // Every network namespace has a loopback device.
        if Path::new("/proc/thread-self/net/dev").exists() {
            assert!(link_exists("lo"));
            assert!(!link_exists("liqo-nonexist"));
        }
    }
}
