//! A plain, **unencrypted** VXLAN [`TunnelBackend`] for trusted links (feature `vxlan`).
//!
//! [`VxlanBackend`] proves that the tunnel seam is not tied to WireGuard: the gateway drives
//! it exactly as it drives [`WireGuardBackend`](crate::WireGuardBackend). It suits links that
//! are already private (a VPN between data centres, a lab): nothing is encrypted or
//! authenticated, so anyone on the path can read and inject traffic.
//!
//! How the [`TunnelBackend`] calls map to VXLAN:
//!
//! - [`ensure_interface`](TunnelBackend::ensure_interface) creates a `vxlan` link named
//!   [`InterfaceSpec::name`] with the backend's VNI ([`VxlanBackend::new`]) and UDP port
//!   [`InterfaceSpec::listen_port`] ([`DEFAULT_VXLAN_PORT`] when it is 0), then sets the
//!   address, the MTU and brings it up. VXLAN sends to and listens on the same port, so
//!   both ends need the same port; the port of a peer's endpoint is ignored.
//! - A VXLAN link has a single `remote`: [`upsert_peer`](TunnelBackend::upsert_peer) sets
//!   it to the IP of the peer's endpoint, and a second peer (another public key) is refused
//!   with [`Error::TooManyPeers`]. The kernel cannot change the `remote` of a VXLAN link in
//!   place, so a new or changed endpoint recreates the link (traffic pauses for a moment). A
//!   peer without endpoint leaves the link without `remote`: it receives, learns where the
//!   other end is from what it receives (VXLAN learning), and sends nothing before.
//! - [`status`](TunnelBackend::status) reports the byte counters of the link
//!   (`ip -s link`) as the peer's traffic; there is no handshake (`last_handshake` is
//!   `None`).
//! - [`teardown`](TunnelBackend::teardown) deletes the link.
//! - [`generate_keys`](TunnelBackend::generate_keys) returns 32 random bytes for each half:
//!   **the keys are not used for anything** but to identify the peer in the trait's calls.
//!
//! Every call is idempotent and runs `ip` through [`tokio::process`] (nothing blocks the
//! runtime). The link is a kernel object: it survives the process, and a new backend with
//! the same settings adopts it on its first [`ensure_interface`](TunnelBackend::ensure_interface).
//! [`VxlanBackend::in_netns`] makes the backend work in a named network namespace
//! (`ip -n <netns>`), which tests and benchmarks use.
//!
//! # Example
//!
//! ```no_run
//! use liqo_net::TunnelBackend;
//! use liqo_net::tunnel::{InterfaceSpec, PeerSpec};
//! use liqo_net::vxlan::VxlanBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Needs root (CAP_NET_ADMIN) and the kernel's vxlan support.
//! let tunnel = VxlanBackend::new(42)?;
//! let keys = tunnel.generate_keys().await?; // placeholders: VXLAN has no cryptography
//! let spec = InterfaceSpec::new("169.254.18.1/30".parse()?, keys.private)
//!     .with_name("liqo-vxlan")
//!     .with_listen_port(0) // 0: the IANA VXLAN port, 4789
//!     .with_mtu(1450);
//! tunnel.ensure_interface(&spec).await?;
//!
//! // The other gateway; its public key only identifies it.
//! let remote = tunnel.generate_keys().await?.public;
//! let peer = PeerSpec::new(remote).with_endpoint("192.0.2.7:4789".parse()?);
//! tunnel.upsert_peer(&peer).await?;
//! let status = tunnel.status().await?;
//! println!("sent {:?} bytes", status.peer(&remote).map(|p| p.tx_bytes));
//! tunnel.teardown().await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::overlay::{LinkState, ensure_address, ip_in, link_state};
use crate::tunnel::{
    InterfaceSpec, KEY_LEN, KeyPair, PeerSpec, PeerStatus, PrivateKey, PublicKey, TunnelBackend,
    TunnelStatus,
};
use crate::{Error, Result};

/// The UDP port of VXLAN assigned by IANA, used when [`InterfaceSpec::listen_port`] is 0.
pub const DEFAULT_VXLAN_PORT: u16 = 4789;

/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// A plain VXLAN [`TunnelBackend`]: one point-to-point link, no encryption.
///
/// See the [module documentation](self) for what each call does and a complete example.
///
/// ```
/// use liqo_net::TunnelBackend;
/// use liqo_net::vxlan::VxlanBackend;
///
/// # fn main() -> Result<(), liqo_net::Error> {
/// let tunnel = VxlanBackend::new(42)?.in_netns("gw-a");
/// assert_eq!((tunnel.name(), tunnel.vni(), tunnel.netns()), ("vxlan", 42, Some("gw-a")));
/// assert!(VxlanBackend::new(1 << 24).is_err()); // VNIs have 24 bits
/// # Ok(()) }
/// ```
pub struct VxlanBackend {
    vni: u32,
    netns: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spec: Option<InterfaceSpec>,
    peer: Option<PeerSpec>,
}

impl fmt::Debug for VxlanBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VxlanBackend")
            .field("vni", &self.vni)
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}

/// What the link should look like, compared with what `ip -d link show` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Desired {
    vni: u32,
    port: u16,
    remote: Option<IpAddr>,
}

impl Desired {
    /// Whether the existing link can be kept (only MTU, address and state may differ).
    fn matches(&self, link: &LinkState) -> bool {
        link.kind.as_deref() == Some("vxlan")
            && link.vni == Some(self.vni)
            && link.port == Some(self.port)
            && link.remote == self.remote
    }
}

impl VxlanBackend {
    /// A backend whose links use the VXLAN network identifier `vni`, in the network
    /// namespace of the process. Touches nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOverlay`] if `vni` does not fit in 24 bits.
    pub fn new(vni: u32) -> Result<Self> {
        if vni > MAX_VNI {
            return Err(Error::InvalidOverlay(format!(
                "VXLAN network identifier {vni} does not fit in 24 bits (max {MAX_VNI})"
            )));
        }
        Ok(Self {
            vni,
            netns: None,
            state: Mutex::new(State::default()),
        })
    }

    /// The same backend, working in the named network namespace (`ip -n <netns>`, i.e.
    /// `/run/netns/<netns>`) instead of the process's.
    #[must_use]
    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// The VXLAN network identifier of the links.
    #[must_use]
    pub const fn vni(&self) -> u32 {
        self.vni
    }

    /// The network namespace the backend works in, `None` for the process's.
    #[must_use]
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    async fn ip(&self, args: &[&str]) -> Result<String> {
        ip_in(self.netns.as_deref(), args).await
    }

    /// Brings the link in line with `state` (which must have a spec).
    async fn apply(&self, state: &State) -> Result<()> {
        let Some(spec) = &state.spec else {
            return Err(Error::NoInterface);
        };
        let desired = Desired {
            vni: self.vni,
            port: if spec.listen_port == 0 {
                DEFAULT_VXLAN_PORT
            } else {
                spec.listen_port
            },
            remote: state.peer.as_ref().and_then(|p| p.endpoint).map(|e| e.ip()),
        };
        let name = spec.name.as_str();
        match link_state(self.netns.as_deref(), name).await? {
            Some(link) if desired.matches(&link) => {}
            existing => {
                if existing.is_some() {
                    tracing::info!(link = name, "recreating VXLAN link with new settings");
                    self.ip(&["link", "delete", "dev", name]).await?;
                }
                let (vni, port) = (desired.vni.to_string(), desired.port.to_string());
                let mut args = vec![
                    "link", "add", name, "type", "vxlan", "id", &vni, "dstport", &port,
                ];
                let remote = desired.remote.map(|r| r.to_string());
                if let Some(remote) = &remote {
                    args.extend(["remote", remote.as_str()]);
                }
                self.ip(&args).await?;
            }
        }
        ensure_address(self.netns.as_deref(), name, spec.address).await?;
        let mtu = spec.mtu.to_string();
        self.ip(&["link", "set", "dev", name, "mtu", &mtu, "up"])
            .await?;
        Ok(())
    }
}

/// `n` random bytes from the system's generator.
fn random_key() -> Result<[u8; KEY_LEN]> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; KEY_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Backend("the system random generator failed".into()))?;
    Ok(bytes)
}

#[async_trait]
impl TunnelBackend for VxlanBackend {
    fn name(&self) -> &'static str {
        "vxlan"
    }

    /// Two independent random values: VXLAN has no cryptography, the "public key" only
    /// identifies this end to the other's [`upsert_peer`](TunnelBackend::upsert_peer).
    async fn generate_keys(&self) -> Result<KeyPair> {
        Ok(KeyPair::new(
            PrivateKey::from_bytes(random_key()?),
            PublicKey::from_bytes(random_key()?),
        ))
    }

    async fn ensure_interface(&self, spec: &InterfaceSpec) -> Result<()> {
        spec.validate()?;
        let mut state = self.state.lock().await;
        if let Some(old) = &state.spec
            && old.name != spec.name
        {
            // Renamed: the old link is ours and would otherwise be left behind.
            if link_state(self.netns.as_deref(), &old.name)
                .await?
                .is_some()
            {
                self.ip(&["link", "delete", "dev", &old.name]).await?;
            }
        }
        state.spec = Some(spec.clone());
        self.apply(&state).await
    }

    async fn upsert_peer(&self, peer: &PeerSpec) -> Result<()> {
        let mut state = self.state.lock().await;
        if state.spec.is_none() {
            return Err(Error::NoInterface);
        }
        if let Some(existing) = &state.peer
            && existing.public_key != peer.public_key
        {
            return Err(Error::TooManyPeers {
                backend: "vxlan",
                existing: existing.public_key.to_base64(),
                requested: peer.public_key.to_base64(),
            });
        }
        state.peer = Some(peer.clone());
        self.apply(&state).await
    }

    async fn remove_peer(&self, key: &PublicKey) -> Result<()> {
        let mut state = self.state.lock().await;
        if state.peer.as_ref().is_none_or(|p| &p.public_key != key) {
            return Ok(());
        }
        state.peer = None;
        if state.spec.is_some() {
            self.apply(&state).await?;
        }
        Ok(())
    }

    async fn status(&self) -> Result<TunnelStatus> {
        let state = self.state.lock().await;
        let mut status = TunnelStatus::default();
        let Some(spec) = &state.spec else {
            return Ok(status);
        };
        let Some(link) = link_state(self.netns.as_deref(), &spec.name).await? else {
            return Ok(status);
        };
        status.interface = Some(spec.name.clone());
        if let Some(peer) = &state.peer {
            let mut p = PeerStatus::new(peer.public_key);
            p.endpoint = peer.endpoint;
            p.rx_bytes = link.rx_bytes;
            p.tx_bytes = link.tx_bytes;
            status.peers.push(p);
        }
        Ok(status)
    }

    async fn teardown(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        state.peer = None;
        if let Some(spec) = state.spec.take()
            && link_state(self.netns.as_deref(), &spec.name)
                .await?
                .is_some()
        {
            self.ip(&["link", "delete", "dev", &spec.name]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    #[test]
    fn desired_link_comparison() {
        let desired = Desired {
            vni: 42,
            port: 4789,
            remote: Some("192.0.2.1".parse().unwrap()),
        };
        let mut link = LinkState {
            kind: Some("vxlan".to_owned()),
            vni: Some(42),
            port: Some(4789),
            remote: Some("192.0.2.1".parse().unwrap()),
            ..LinkState::default()
        };
        assert!(desired.matches(&link));
        link.remote = None;
        assert!(!desired.matches(&link));
        link.remote = desired.remote;
        link.vni = Some(43);
        assert!(!desired.matches(&link));
        link.vni = Some(42);
        link.kind = Some("veth".to_owned());
        assert!(!desired.matches(&link));
    }

    #[tokio::test]
    async fn keys_are_random_and_peers_need_an_interface() {
        let backend = VxlanBackend::new(7).unwrap();
        let a = backend.generate_keys().await.unwrap();
        let b = backend.generate_keys().await.unwrap();
        assert_ne!(a, b);
        assert_ne!(a.public.as_bytes(), a.private.as_bytes());
        assert!(matches!(
            backend.upsert_peer(&PeerSpec::new(a.public)).await,
            Err(Error::NoInterface)
        ));
        backend.remove_peer(&a.public).await.unwrap();
        assert_eq!(backend.status().await.unwrap(), TunnelStatus::default());
        backend.teardown().await.unwrap();
        assert!(matches!(
            VxlanBackend::new(MAX_VNI + 1),
            Err(Error::InvalidOverlay(_))
        ));
    }
}
