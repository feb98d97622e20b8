//! The tunnel seam: the [`TunnelBackend`] trait and the plain data it speaks.
//!
//! A Liqo gateway owns one tunnel interface with (in practice) one peer: the gateway of the
//! other cluster. The default backend is WireGuard; a third party can plug in anything that
//! can create an interface, add and remove peers identified by a public key, and report
//! per-peer traffic (IPsec, OpenVPN, unencrypted VXLAN or GRE on trusted links).
//!
//! The defaults follow upstream Liqo: interface `liqo-tunnel`, MTU 1340, listen port 51840.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnetwork::{IpNetwork, Ipv4Network};

use crate::{Error, Result};

/// Name of the tunnel interface in the gateway (upstream's `liqo-tunnel`).
pub const DEFAULT_INTERFACE_NAME: &str = "liqo-tunnel";

/// MTU of the tunnel interface (upstream's default, leaving room for WireGuard over
/// encapsulated cloud networks).
pub const DEFAULT_MTU: u32 = 1340;

/// UDP port the gateway server listens on (upstream's default).
pub const DEFAULT_LISTEN_PORT: u16 = 51840;

/// Keepalive interval set on peers by [`PeerSpec::new`], so that NAT mappings between the
/// gateways stay open (upstream sets none and relies on its own pings instead).
pub const DEFAULT_PERSISTENT_KEEPALIVE: Duration = Duration::from_secs(25);

/// Length in bytes of a [`PublicKey`] or [`PrivateKey`] (a Curve25519 key for WireGuard).
pub const KEY_LEN: usize = 32;

/// Longest interface name Linux accepts (`IFNAMSIZ` minus the terminating NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// Checks that `name` is a network interface name Linux accepts and that is safe to embed in
/// an nftables script.
///
/// Accepted: 1 to 15 ASCII letters, digits, `-`, `_` and `.`, and neither `.` nor `..`.
///
/// ```
/// use liqo_net::tunnel::validate_interface_name;
///
/// assert!(validate_interface_name("liqo-tunnel").is_ok());
/// assert!(validate_interface_name("eth0.100").is_ok());
/// assert!(validate_interface_name("a-name-that-is-too-long").is_err());
/// assert!(validate_interface_name("bad\"quote").is_err());
/// ```
///
/// # Errors
///
/// [`Error::InvalidInterfaceName`] saying what is wrong.
pub fn validate_interface_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_INTERFACE_NAME_LEN {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved name")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("only ASCII letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidInterfaceName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn decode_key(s: &str) -> Result<[u8; KEY_LEN]> {
    let bytes = BASE64.decode(s.trim()).map_err(|e| Error::InvalidKey {
        reason: format!("not base64: {e}"),
    })?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| Error::InvalidKey {
        reason: format!("{} bytes instead of {KEY_LEN}", bytes.len()),
    })
}

/// The public key of a tunnel endpoint, which also identifies a peer.
///
/// Parsed from and displayed as standard base64, as `wg` and upstream's `PublicKey` resource
/// use it.
///
/// ```
/// use liqo_net::tunnel::PublicKey;
///
/// # fn main() -> Result<(), liqo_net::Error> {
/// let key: PublicKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".parse()?;
/// assert_eq!(key, PublicKey::from_bytes([1; 32]));
/// assert_eq!(key.to_string(), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
/// assert!("c2hvcnQ=".parse::<PublicKey>().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key with these raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes of the key.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key in standard base64 (44 characters).
    #[must_use]
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.to_base64()).finish()
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        decode_key(s).map(Self)
    }
}

/// The private key of a tunnel endpoint.
///
/// Its `Debug` output hides the key and it has no `Display`: printing it takes an explicit
/// [`to_base64`](Self::to_base64).
///
/// ```
/// use liqo_net::tunnel::PrivateKey;
///
/// # fn main() -> Result<(), liqo_net::Error> {
/// let key: PrivateKey = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=".parse()?;
/// assert_eq!(key.as_bytes(), &[2; 32]);
/// assert_eq!(format!("{key:?}"), "PrivateKey(<redacted>)");
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// The key with these raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes of the key.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key in standard base64 (44 characters), e.g. to store it in a Secret.
    #[must_use]
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl FromStr for PrivateKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        decode_key(s).map(Self)
    }
}

/// A private key and the public key derived from it, as
/// [`TunnelBackend::generate_keys`] returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyPair {
    /// The private key; keep it secret (upstream stores it in a Secret of the gateway).
    pub private: PrivateKey,
    /// The public key, published to the peer (upstream's `PublicKey` resource).
    pub public: PublicKey,
}

impl KeyPair {
    /// A pair from its two halves. The caller vouches that `public` belongs to `private`.
    #[must_use]
    pub const fn new(private: PrivateKey, public: PublicKey) -> Self {
        Self { private, public }
    }
}

/// The tunnel interface a backend must create (or keep, when it already matches).
///
/// [`new`](Self::new) fills in upstream's defaults; adjust them with the `with_*` setters or
/// by assigning the public fields.
///
/// ```
/// use liqo_net::tunnel::{InterfaceSpec, PrivateKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = InterfaceSpec::new("169.254.18.1/30".parse()?, PrivateKey::from_bytes([7; 32]));
/// assert_eq!((spec.name.as_str(), spec.mtu, spec.listen_port), ("liqo-tunnel", 1340, 51840));
///
/// let spec = spec.with_name("liqo-tunnel1").with_mtu(1420).with_listen_port(0);
/// spec.validate()?;
/// assert!(spec.clone().with_name("no/slash").validate().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceSpec {
    /// Interface name (default [`DEFAULT_INTERFACE_NAME`]).
    pub name: String,
    /// Address of the local end with the prefix of the tunnel network; upstream uses
    /// `169.254.18.1/30` on the server and `169.254.18.2/30` on the client.
    pub address: IpNetwork,
    /// MTU (default [`DEFAULT_MTU`]).
    pub mtu: u32,
    /// UDP port to listen on (default [`DEFAULT_LISTEN_PORT`]); `0` lets the backend pick
    /// any free port, which suits the client side.
    pub listen_port: u16,
    /// The private key of this end.
    pub private_key: PrivateKey,
}

impl InterfaceSpec {
    /// Smallest MTU [`validate`](Self::validate) accepts (the IPv4 minimum).
    pub const MIN_MTU: u32 = 68;

    /// A spec with upstream's defaults for everything but the address and the key.
    #[must_use]
    pub fn new(address: IpNetwork, private_key: PrivateKey) -> Self {
        Self {
            name: DEFAULT_INTERFACE_NAME.to_owned(),
            address,
            mtu: DEFAULT_MTU,
            listen_port: DEFAULT_LISTEN_PORT,
            private_key,
        }
    }

    /// The same spec with another interface name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The same spec with another MTU.
    #[must_use]
    pub fn with_mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    /// The same spec with another listen port (`0`: any).
    #[must_use]
    pub fn with_listen_port(mut self, port: u16) -> Self {
        self.listen_port = port;
        self
    }

    /// Checks what can be checked without touching the system: the interface name (see
    /// [`validate_interface_name`]) and the MTU (at least [`Self::MIN_MTU`] and at most
    /// 65535).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInterfaceName`] or [`Error::InvalidMtu`].
    pub fn validate(&self) -> Result<()> {
        validate_interface_name(&self.name)?;
        if !(Self::MIN_MTU..=u32::from(u16::MAX)).contains(&self.mtu) {
            return Err(Error::InvalidMtu { mtu: self.mtu });
        }
        Ok(())
    }
}

/// `0.0.0.0/0`, checked at compile time.
const ALL_IPV4: Ipv4Network = match Ipv4Network::new_checked(Ipv4Addr::UNSPECIFIED, 0) {
    Some(net) => net,
    None => panic!("0 is a valid IPv4 prefix length"),
};

/// A peer of the tunnel, as [`TunnelBackend::upsert_peer`] must configure it.
///
/// ```
/// use std::time::Duration;
/// use liqo_net::tunnel::{PeerSpec, PublicKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let peer = PeerSpec::new(PublicKey::from_bytes([3; 32]))
///     .with_endpoint("192.0.2.10:51840".parse()?)
///     .with_allowed_ips(["10.1.0.0/16".parse()?, "169.254.18.0/30".parse()?]);
/// assert_eq!(peer.persistent_keepalive, Some(Duration::from_secs(25)));
/// assert_eq!(peer.allowed_ips.len(), 2);
///
/// // By default, like upstream, everything may flow through the single peer.
/// let peer = PeerSpec::new(PublicKey::from_bytes([3; 32]));
/// assert_eq!(peer.allowed_ips, vec!["0.0.0.0/0".parse()?]);
/// assert_eq!(peer.endpoint, None);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerSpec {
    /// The peer's public key, which identifies it.
    pub public_key: PublicKey,
    /// Where to reach the peer; `None` on a server waiting for the client to connect.
    /// Names are resolved by the caller (upstream re-resolves the server's name periodically).
    pub endpoint: Option<SocketAddr>,
    /// Destinations routed to this peer and sources accepted from it (default `0.0.0.0/0`,
    /// as upstream: a gateway has a single peer).
    pub allowed_ips: Vec<IpNetwork>,
    /// Keepalive interval; `None` disables it (default [`DEFAULT_PERSISTENT_KEEPALIVE`]).
    pub persistent_keepalive: Option<Duration>,
}

impl PeerSpec {
    /// A peer with no endpoint, all IPv4 destinations allowed and the default keepalive.
    #[must_use]
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            endpoint: None,
            allowed_ips: vec![IpNetwork::V4(ALL_IPV4)],
            persistent_keepalive: Some(DEFAULT_PERSISTENT_KEEPALIVE),
        }
    }

    /// The same peer, reached at `endpoint`.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: SocketAddr) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// The same peer with these allowed IPs instead of the current ones.
    #[must_use]
    pub fn with_allowed_ips(mut self, allowed_ips: impl IntoIterator<Item = IpNetwork>) -> Self {
        self.allowed_ips = allowed_ips.into_iter().collect();
        self
    }

    /// The same peer with another keepalive interval (`None`: off).
    #[must_use]
    pub fn with_persistent_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.persistent_keepalive = interval;
        self
    }
}

/// What a backend reports about one peer.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use liqo_net::tunnel::{PeerStatus, PublicKey};
///
/// let now = SystemTime::now();
/// let mut peer = PeerStatus::new(PublicKey::from_bytes([3; 32]));
/// assert!(!peer.handshake_within(now, Duration::from_secs(180)));
/// peer.last_handshake = Some(now - Duration::from_secs(30));
/// assert!(peer.handshake_within(now, Duration::from_secs(180)));
/// assert!(!peer.handshake_within(now, Duration::from_secs(10)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStatus {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// The endpoint the peer was last seen at, if known.
    pub endpoint: Option<SocketAddr>,
    /// When the last handshake completed; `None` if never (or if the backend has no
    /// handshakes, e.g. an unencrypted tunnel).
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
}

impl PeerStatus {
    /// The status of a peer that has exchanged nothing yet.
    #[must_use]
    pub const fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            endpoint: None,
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    /// Whether the last handshake completed at most `max_age` before `now` (a WireGuard
    /// session is dropped 180 s after its handshake unless renewed). A handshake in the
    /// future (clock skew) counts as recent.
    #[must_use]
    pub fn handshake_within(&self, now: SystemTime, max_age: Duration) -> bool {
        self.last_handshake
            .is_some_and(|at| now.duration_since(at).map_or(true, |age| age <= max_age))
    }
}

/// What a backend reports about its tunnel, from [`TunnelBackend::status`].
///
/// ```
/// use liqo_net::tunnel::{PeerStatus, PublicKey, TunnelStatus};
///
/// let key = PublicKey::from_bytes([3; 32]);
/// let mut status = TunnelStatus::default();
/// status.interface = Some("liqo-tunnel".to_owned());
/// status.peers.push(PeerStatus::new(key));
/// assert_eq!(status.peer(&key).map(|p| p.rx_bytes), Some(0));
/// assert!(status.peer(&PublicKey::from_bytes([4; 32])).is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunnelStatus {
    /// The name of the interface, `None` when it does not exist.
    pub interface: Option<String>,
    /// The configured peers.
    pub peers: Vec<PeerStatus>,
}

impl TunnelStatus {
    /// The status of the peer with this public key, if configured.
    #[must_use]
    pub fn peer(&self, key: &PublicKey) -> Option<&PeerStatus> {
        self.peers.iter().find(|p| &p.public_key == key)
    }
}

/// A tunnel implementation: WireGuard by default, or whatever a third party plugs in.
///
/// The trait is object safe, so a binary can pick the backend at run time and hand an
/// `Arc<dyn TunnelBackend>` to the library (it implements the trait too).
///
/// # Contract
///
/// - [`ensure_interface`](Self::ensure_interface), [`upsert_peer`](Self::upsert_peer),
///   [`remove_peer`](Self::remove_peer) and [`teardown`](Self::teardown) are idempotent:
///   the gateway calls them on every reconciliation, and after a restart.
/// - [`upsert_peer`](Self::upsert_peer) replaces the whole configuration of the peer with
///   that public key; removing an unknown peer is not an error.
/// - Failures specific to the implementation are reported as [`Error::Backend`].
/// - Blocking work (netlink, a synchronous library) belongs off the async runtime
///   (`tokio::task::spawn_blocking` or a thread of its own).
///
/// # Example
///
/// A complete backend that only records what it is asked to do:
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::{Arc, Mutex, MutexGuard};
///
/// use async_trait::async_trait;
/// use liqo_net::tunnel::{
///     InterfaceSpec, KeyPair, PeerSpec, PeerStatus, PrivateKey, PublicKey, TunnelBackend,
///     TunnelStatus,
/// };
/// use liqo_net::{Error, Result};
///
/// /// Remembers the interface and peers it was given; moves no packets.
/// #[derive(Debug, Default)]
/// struct InMemory {
///     state: Mutex<State>,
/// }
///
/// #[derive(Debug, Default)]
/// struct State {
///     interface: Option<InterfaceSpec>,
///     peers: BTreeMap<PublicKey, PeerSpec>,
///     keys_generated: u8,
/// }
///
/// impl InMemory {
///     fn state(&self) -> Result<MutexGuard<'_, State>> {
///         self.state.lock().map_err(|_| Error::Backend("state lock poisoned".into()))
///     }
/// }
///
/// #[async_trait]
/// impl TunnelBackend for InMemory {
///     fn name(&self) -> &'static str {
///         "in-memory"
///     }
///
///     async fn generate_keys(&self) -> Result<KeyPair> {
///         let mut state = self.state()?;
///         state.keys_generated += 1;
///         let n = state.keys_generated;
///         // Not cryptography: WireGuard derives the public key with X25519.
///         Ok(KeyPair::new(PrivateKey::from_bytes([n; 32]), PublicKey::from_bytes([!n; 32])))
///     }
///
///     async fn ensure_interface(&self, spec: &InterfaceSpec) -> Result<()> {
///         spec.validate()?;
///         self.state()?.interface = Some(spec.clone());
///         Ok(())
///     }
///
///     async fn upsert_peer(&self, peer: &PeerSpec) -> Result<()> {
///         let mut state = self.state()?;
///         if state.interface.is_none() {
///             return Err(Error::NoInterface);
///         }
///         state.peers.insert(peer.public_key, peer.clone());
///         Ok(())
///     }
///
///     async fn remove_peer(&self, key: &PublicKey) -> Result<()> {
///         self.state()?.peers.remove(key);
///         Ok(())
///     }
///
///     async fn status(&self) -> Result<TunnelStatus> {
///         let state = self.state()?;
///         let mut status = TunnelStatus::default();
///         status.interface = state.interface.as_ref().map(|spec| spec.name.clone());
///         for peer in state.peers.values() {
///             let mut peer_status = PeerStatus::new(peer.public_key);
///             peer_status.endpoint = peer.endpoint;
///             status.peers.push(peer_status);
///         }
///         Ok(status)
///     }
///
///     async fn teardown(&self) -> Result<()> {
///         let mut state = self.state()?;
///         state.interface = None;
///         state.peers.clear();
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
/// // Chosen at run time, used through the trait object.
/// let tunnel: Arc<dyn TunnelBackend> = Arc::new(InMemory::default());
/// assert_eq!(tunnel.name(), "in-memory");
///
/// let local = tunnel.generate_keys().await?;
/// let remote = tunnel.generate_keys().await?;
/// let peer = PeerSpec::new(remote.public).with_endpoint("192.0.2.10:51840".parse()?);
/// assert!(matches!(tunnel.upsert_peer(&peer).await, Err(Error::NoInterface)));
///
/// let spec = InterfaceSpec::new("169.254.18.1/30".parse()?, local.private);
/// tunnel.ensure_interface(&spec).await?;
/// tunnel.ensure_interface(&spec).await?; // idempotent
/// tunnel.upsert_peer(&peer).await?;
///
/// let status = tunnel.status().await?;
/// assert_eq!(status.interface.as_deref(), Some("liqo-tunnel"));
/// assert_eq!(status.peer(&remote.public).and_then(|p| p.endpoint), peer.endpoint);
///
/// tunnel.remove_peer(&remote.public).await?;
/// tunnel.remove_peer(&remote.public).await?; // idempotent
/// tunnel.teardown().await?;
/// assert_eq!(tunnel.status().await?, TunnelStatus::default());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait TunnelBackend: Send + Sync + 'static {
    /// A short name for logs and metrics, e.g. `"wireguard-kernel"`.
    fn name(&self) -> &'static str;

    /// Generates a fresh key pair for this kind of tunnel. The caller persists it (upstream
    /// keeps it in a Secret) and passes the private key back in [`InterfaceSpec`].
    /// Backends without cryptography may return random bytes that only identify the peer.
    async fn generate_keys(&self) -> Result<KeyPair>;

    /// Creates the interface, or brings an existing one in line with `spec`. Idempotent.
    async fn ensure_interface(&self, spec: &InterfaceSpec) -> Result<()>;

    /// Adds the peer, or replaces the configuration of the peer with the same public key.
    /// Idempotent. May fail with [`Error::NoInterface`] before
    /// [`ensure_interface`](Self::ensure_interface).
    async fn upsert_peer(&self, peer: &PeerSpec) -> Result<()>;

    /// Removes the peer with this public key; an unknown peer is not an error.
    async fn remove_peer(&self, key: &PublicKey) -> Result<()>;

    /// Reports the interface and, per peer, the last handshake and the bytes in and out.
    async fn status(&self) -> Result<TunnelStatus>;

    /// Removes the interface and whatever else the backend created (sockets, threads).
    /// Idempotent. The default does nothing, for backends that own nothing outside the
    /// process.
    async fn teardown(&self) -> Result<()> {
        Ok(())
    }

    /// Checks that the tunnel still works as configured, e.g. that a userspace device still
    /// answers; the gateway calls it periodically and recovers (or stops) on an error. The
    /// default reports a healthy tunnel.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<T: TunnelBackend + ?Sized> TunnelBackend for Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn generate_keys(&self) -> Result<KeyPair> {
        (**self).generate_keys().await
    }

    async fn ensure_interface(&self, spec: &InterfaceSpec) -> Result<()> {
        (**self).ensure_interface(spec).await
    }

    async fn upsert_peer(&self, peer: &PeerSpec) -> Result<()> {
        (**self).upsert_peer(peer).await
    }

    async fn remove_peer(&self, key: &PublicKey) -> Result<()> {
        (**self).remove_peer(key).await
    }

    async fn status(&self) -> Result<TunnelStatus> {
        (**self).status().await
    }

    async fn teardown(&self) -> Result<()> {
        (**self).teardown().await
    }

    async fn check(&self) -> Result<()> {
        (**self).check().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    /// Compiles only if the trait is object safe and the trait object is shareable.
    fn _object_safe(backend: Arc<dyn TunnelBackend>) -> impl TunnelBackend {
        backend
    }

    #[test]
    fn key_roundtrip_and_errors() {
        // A key as `wg genkey | wg pubkey` prints it.
        let text = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
        let key: PublicKey = text.parse().unwrap();
        assert_eq!(key.to_string(), text);
        assert_eq!(key.to_base64(), text);
        assert_eq!(format!("{key:?}"), format!("PublicKey({text:?})"));
        // Surrounding whitespace (a trailing newline from a file) is tolerated.
        assert_eq!(format!("{text}\n").parse::<PublicKey>().unwrap(), key);

        let private: PrivateKey = text.parse().unwrap();
        assert_eq!(private.as_bytes(), key.as_bytes());
        assert_eq!(private.to_base64(), text);
        assert!(!format!("{private:?}").contains(text));

        let err = "not base64!".parse::<PublicKey>().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid key: not base64"),
            "{err}"
        );
        let err = "AAAA".parse::<PrivateKey>().unwrap_err();
        assert_eq!(err.to_string(), "invalid key: 3 bytes instead of 32");
    }

    #[test]
    fn interface_names() {
        for ok in ["liqo-tunnel", "eth0", "a", "x_y.z", "abcdefghijklmno"] {
            validate_interface_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "abcdefghijklmnop",
            "has space",
            "a/b",
            "a:b",
            "q\"uote",
            "back\\slash",
            "ünï",
        ] {
            assert!(
                matches!(
                    validate_interface_name(bad),
                    Err(Error::InvalidInterfaceName { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn interface_spec_defaults_and_validation() {
        let spec = InterfaceSpec::new(
            "169.254.18.2/30".parse().unwrap(),
            PrivateKey::from_bytes([1; 32]),
        );
        assert_eq!(spec.name, DEFAULT_INTERFACE_NAME);
        assert_eq!(spec.mtu, 1340);
        assert_eq!(spec.listen_port, 51840);
        spec.validate().unwrap();
        assert!(matches!(
            spec.clone().with_mtu(67).validate(),
            Err(Error::InvalidMtu { mtu: 67 })
        ));
        assert!(spec.clone().with_mtu(70_000).validate().is_err());
        spec.clone().with_mtu(65_535).validate().unwrap();
        assert!(spec.with_name("").validate().is_err());
    }

    #[test]
    fn handshake_in_the_future_counts_as_recent() {
        let now = SystemTime::now();
        let mut peer = PeerStatus::new(PublicKey::from_bytes([0; 32]));
        peer.last_handshake = Some(now + Duration::from_secs(5));
        assert!(peer.handshake_within(now, Duration::ZERO));
    }
}
