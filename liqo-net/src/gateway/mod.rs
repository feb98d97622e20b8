//! The gateway: one per peering and side, it owns the tunnel to the peer's gateway, the policy
//! routing that sends the peer's CIDRs into it, and the nftables NAT that makes overlapping
//! CIDRs work (upstream's `remap-podcidr` and `remap-externalcidr` tables) plus the source
//! NAT of traffic that does not come from a local pod (to the unknown-source IP, or all
//! traffic with `full_masquerade`).
//!
//! [`Gateway`] is the data-plane half, driven by a plain [`GatewayConfig`]; it takes any
//! [`TunnelBackend`](crate::TunnelBackend). [`controller`] is the control-plane half that
//! builds the configuration from `GatewayServer`/`GatewayClient`, `PublicKey` and
//! `Configuration` resources and writes `Connection` status. `liqo-gateway` (bins/gateway)
//! wires them together, or runs from a static file.
//!
//! A gateway owns, in its network namespace: the tunnel link, the `ip rule`s with priorities
//! 1900-1999 ([`routing::RULE_PRIORITY`]), its routing table, and the nftables tables
//! `ip remap-podcidr`, `ip remap-externalcidr` and `ip liqo-gw-masquerade`. It never touches
//! anything else, and one gateway runs per network namespace (as upstream's gateway pods).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use liqo_ipam::remap::{Mapping, RemoteCidrs};
//! use liqo_net::gateway::{Gateway, GatewayConfig, Mode, PeerConfig};
//! use liqo_net::tunnel::TunnelBackend;
//! use liqo_net::WireGuardBackend;
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = Arc::new(WireGuardBackend::default());
//! let keys = backend.generate_keys().await?;
//! let mut config = GatewayConfig::new(Mode::Client, keys.private, "eth0");
//! config.peer = Some(PeerConfig {
//!     public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".parse()?,
//!     endpoint: Some("192.0.2.10:51840".parse()?),
//! });
//! // The peer uses our pod CIDR too: we see it as 10.71.0.0/16.
//! config.remote = RemoteCidrs {
//!     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.71.0.0/16".parse()?)?],
//!     external: vec![Mapping::new("10.70.0.0/16".parse()?, "10.91.0.0/16".parse()?)?],
//! };
//! config.local_pod_cidrs = vec!["10.0.0.0/16".parse()?];
//! config.local_external_cidr = Some("10.70.0.0/16".parse()?);
//!
//! let gateway = Gateway::new(backend);
//! gateway.apply(&config).await?;
//! // ... later, on shutdown:
//! gateway.teardown().await?;
//! # Ok(()) }
//! ```

pub mod conncheck;
pub mod controller;
pub mod file;
pub mod routing;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use liqo_ipam::remap::RemoteCidrs;
use tokio::sync::Mutex;

use crate::nat::RemapTables;
use crate::tunnel::{DEFAULT_INTERFACE_NAME, InterfaceSpec, PeerSpec, PrivateKey, PublicKey};
use crate::{Error, Result, TunnelBackend, sys};

/// Name of the nftables table with the gateway's source NAT to the unknown-source IP.
pub const MASQUERADE_TABLE: &str = "liqo-gw-masquerade";

/// Which end of the tunnel this gateway is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Listens for the peer (upstream: on the provider by default).
    Server,
    /// Connects to the peer's server.
    Client,
}

impl Mode {
    /// The tunnel address of this end: `169.254.18.1/30` for the server and
    /// `169.254.18.2/30` for the client, as upstream.
    #[must_use]
    pub fn tunnel_address(self) -> IpNetwork {
        let ip = match self {
            Self::Server => Ipv4Addr::new(169, 254, 18, 1),
            Self::Client => Ipv4Addr::new(169, 254, 18, 2),
        };
        IpNetwork::new(IpAddr::V4(ip), 30).unwrap_or_else(|_| IpNetwork::from(IpAddr::V4(ip)))
    }

    /// The other end's tunnel address.
    #[must_use]
    pub fn peer_tunnel_ip(self) -> IpAddr {
        match self {
            Self::Server => Self::Client.tunnel_address().ip(),
            Self::Client => Self::Server.tunnel_address().ip(),
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "server" => Ok(Self::Server),
            "client" => Ok(Self::Client),
            other => Err(Error::InvalidConfig(format!(
                "mode {other:?}: expected `server` or `client`"
            ))),
        }
    }
}

/// The peer's gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its public key.
    pub public_key: PublicKey,
    /// Where to reach it (needed on the client; a server learns it from the handshake).
    pub endpoint: Option<SocketAddr>,
}

/// Everything the data plane of a gateway needs; pure data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Server or client.
    pub mode: Mode,
    /// Tunnel link name (default `liqo-tunnel`). User-space WireGuard keeps its control
    /// socket in `/var/run/wireguard`, shared by every network namespace of the host, so
    /// gateways sharing a host need distinct names there.
    pub tunnel_interface: String,
    /// Tunnel MTU (default 1340).
    pub mtu: u32,
    /// UDP port the server listens on (default 51840; ignored on clients, which use any).
    pub listen_port: u16,
    /// This end's private key.
    pub private_key: PrivateKey,
    /// The peer, once its public key is known.
    pub peer: Option<PeerConfig>,
    /// The peer's CIDRs: real (as the peer knows them) and remapped (as we see them).
    pub remote: RemoteCidrs,
    /// The local pod CIDRs: traffic from elsewhere (nodes, host network) is source-NATed to
    /// the unknown-source IP so the peer can answer it.
    pub local_pod_cidrs: Vec<IpNetwork>,
    /// The local external CIDR; its first address is the unknown-source IP.
    pub local_external_cidr: Option<IpNetwork>,
    /// Source-NAT all traffic to the peer to the unknown-source IP (upstream's
    /// `fullMasquerade`, for CNIs that rewrite NodePort traffic with pod addresses).
    pub full_masquerade: bool,
    /// The interface towards the outside (the default route's), whose traffic is never
    /// translated.
    pub default_interface: String,
    /// Name of the gateway's routing table (default `liqo-gateway`).
    pub table: String,
}

impl GatewayConfig {
    /// A configuration with upstream's defaults and nothing known about the peer yet.
    #[must_use]
    pub fn new(mode: Mode, private_key: PrivateKey, default_interface: &str) -> Self {
        Self {
            mode,
            tunnel_interface: DEFAULT_INTERFACE_NAME.to_owned(),
            mtu: crate::tunnel::DEFAULT_MTU,
            listen_port: crate::tunnel::DEFAULT_LISTEN_PORT,
            private_key,
            peer: None,
            remote: RemoteCidrs::default(),
            local_pod_cidrs: Vec::new(),
            local_external_cidr: None,
            full_masquerade: false,
            default_interface: default_interface.to_owned(),
            table: "liqo-gateway".to_owned(),
        }
    }

    /// The unknown-source IP: the first address of the local external CIDR.
    #[must_use]
    pub fn unknown_source_ip(&self) -> Option<IpAddr> {
        self.local_external_cidr.map(|c| c.network())
    }

    /// The tunnel interface spec for the backend.
    #[must_use]
    pub fn interface_spec(&self) -> InterfaceSpec {
        let port = match self.mode {
            Mode::Server => self.listen_port,
            Mode::Client => 0,
        };
        InterfaceSpec::new(self.mode.tunnel_address(), self.private_key.clone())
            .with_name(self.tunnel_interface.clone())
            .with_mtu(self.mtu)
            .with_listen_port(port)
    }

    /// The peer spec for the backend: every address goes through the tunnel (routing
    /// decides what enters it), as upstream's `AllowedIPs 0.0.0.0/0`.
    #[must_use]
    pub fn peer_spec(&self) -> Option<PeerSpec> {
        let peer = self.peer.as_ref()?;
        let all = IpNetwork::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).ok()?;
        let mut spec = PeerSpec::new(peer.public_key).with_allowed_ips([all]);
        if let Some(endpoint) = peer.endpoint {
            spec = spec
                .with_endpoint(endpoint)
                .with_persistent_keepalive(Some(std::time::Duration::from_secs(25)));
        }
        Some(spec)
    }

    /// The routing plan: the peer's real pod and external CIDRs go to its tunnel address.
    #[must_use]
    pub fn routing_plan(&self) -> routing::RoutingPlan {
        routing::RoutingPlan::new(
            &self.table,
            &self.tunnel_interface,
            self.mode.peer_tunnel_ip(),
            self.remote.mappings().map(|m| m.real()),
        )
    }

    /// The `nft -f` script of the gateway's NAT: the remap tables and the masquerade table.
    ///
    /// # Errors
    ///
    /// As [`RemapTables::new`].
    pub fn nft_script(&self) -> Result<String> {
        let mut script = RemapTables::new(
            &self.default_interface,
            &self.tunnel_interface,
            &self.remote,
        )?
        .render();
        script.push_str(&self.masquerade_table());
        Ok(script)
    }

    /// The script part that (re)defines the masquerade table.
    fn masquerade_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "table ip {MASQUERADE_TABLE}\ndelete table ip {MASQUERADE_TABLE}"
        );
        let Some(IpAddr::V4(unknown)) = self.unknown_source_ip() else {
            return out;
        };
        let tunnel = &self.tunnel_interface;
        let pods: Vec<String> = self
            .local_pod_cidrs
            .iter()
            .filter(|c| c.is_ipv4())
            .map(ToString::to_string)
            .collect();
        // The tunnel's own addresses (the connection check) are never translated.
        let tunnel_net = IpNetwork::new(
            self.mode.tunnel_address().network(),
            self.mode.tunnel_address().prefix(),
        )
        .map_or_else(
            |_| self.mode.tunnel_address().to_string(),
            |n| n.to_string(),
        );
        let _ = writeln!(out, "table ip {MASQUERADE_TABLE} {{");
        out.push_str("\tchain postrouting {\n");
        out.push_str("\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        let mut kept = vec![tunnel_net];
        if !self.full_masquerade {
            kept.extend(pods);
        }
        let _ = writeln!(
            out,
            "\t\toifname \"{tunnel}\" ip saddr != {{ {} }} snat ip to {unknown}",
            kept.join(", ")
        );
        out.push_str("\t}\n}\n");
        out
    }

    /// Checks what can be checked without touching the system.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (client without a peer endpoint, IPv6 unknown-source) or the
    /// interface validation errors.
    pub fn validate(&self) -> Result<()> {
        self.interface_spec().validate()?;
        crate::tunnel::validate_interface_name(&self.default_interface)?;
        if self.default_interface == self.tunnel_interface {
            return Err(Error::InvalidConfig(format!(
                "the default interface cannot be the tunnel interface {}",
                self.tunnel_interface
            )));
        }
        if let (Mode::Client, Some(peer)) = (self.mode, &self.peer)
            && peer.endpoint.is_none()
        {
            return Err(Error::InvalidConfig(
                "a client gateway needs the server's endpoint (address and port)".to_owned(),
            ));
        }
        if self.local_external_cidr.is_some_and(|c| !c.is_ipv4()) {
            return Err(Error::InvalidConfig(
                "the local external CIDR must be IPv4 (the NAT tables are IPv4)".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The data plane of one gateway.
pub struct Gateway {
    backend: Arc<dyn TunnelBackend>,
    applied: Mutex<Option<GatewayConfig>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over `backend`.
    #[must_use]
    pub fn new(backend: Arc<dyn TunnelBackend>) -> Self {
        Self {
            backend,
            applied: Mutex::new(None),
        }
    }

    /// The tunnel backend.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn TunnelBackend> {
        &self.backend
    }

    /// Brings the data plane to `config`: forwarding on, tunnel link and peer, routing rules
    /// and table, NAT tables. Idempotent; when `config` equals the last applied one and
    /// everything is still in place, nothing is touched (so re-applying periodically repairs
    /// what someone deleted without disturbing traffic).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] before anything is touched, or the error of the step that
    /// failed (backend, `ip`, `nft`); a later call retries every step.
    pub async fn apply(&self, config: &GatewayConfig) -> Result<()> {
        config.validate()?;
        let mut applied = self.applied.lock().await;
        if applied.as_ref() == Some(config) && self.in_place(config).await {
            return Ok(());
        }
        sys::sysctl("net/ipv4/ip_forward", "1").await?;
        self.backend
            .ensure_interface(&config.interface_spec())
            .await?;
        // Loose reverse-path filtering: answers from the peer carry source addresses that the
        // main table routes elsewhere (the peer's real CIDR may be ours too).
        sys::sysctl("net/ipv4/conf/all/rp_filter", "2").await?;
        let _ = sys::sysctl(
            &format!("net/ipv4/conf/{}/rp_filter", config.tunnel_interface),
            "2",
        )
        .await;
        let wanted = config.peer_spec();
        let status = self.backend.status().await?;
        for peer in &status.peers {
            if wanted.as_ref().map(|w| w.public_key) != Some(peer.public_key) {
                self.backend.remove_peer(&peer.public_key).await?;
            }
        }
        if let Some(peer) = &wanted {
            self.backend.upsert_peer(peer).await?;
        }
        let previous_table = applied.as_ref().map(|a| a.table.clone());
        if let Some(old) = previous_table.filter(|t| *t != config.table) {
            routing::remove(&old).await?;
        }
        config.routing_plan().apply().await?;
        sys::nft_apply(&config.nft_script()?).await?;
        *applied = Some(config.clone());
        Ok(())
    }

    /// Whether everything of `config` is still in place.
    async fn in_place(&self, config: &GatewayConfig) -> bool {
        if !sys::link_exists(&config.tunnel_interface).await {
            return false;
        }
        if !config.routing_plan().in_place().await {
            return false;
        }
        let remap = match RemapTables::new(
            &config.default_interface,
            &config.tunnel_interface,
            &config.remote,
        ) {
            Ok(r) => r,
            Err(_) => return false,
        };
        for kind in crate::nat::CidrKind::ALL {
            if remap.table(kind).is_some() && !sys::nft_table_exists(kind.table_name()).await {
                return false;
            }
        }
        if config.unknown_source_ip().is_some() && !sys::nft_table_exists(MASQUERADE_TABLE).await {
            return false;
        }
        true
    }

    /// Removes everything the gateway owns: NAT tables, rules and table, tunnel. Safe to call
    /// when nothing was applied (it then removes what a previous process may have left).
    ///
    /// # Errors
    ///
    /// The first failing step's error; the other steps are still attempted.
    pub async fn teardown(&self) -> Result<()> {
        let mut applied = self.applied.lock().await;
        let table = applied
            .as_ref()
            .map_or_else(|| "liqo-gateway".to_owned(), |c| c.table.clone());
        let mut script = RemapTables::render_removal();
        let _ = writeln!(
            script,
            "table ip {MASQUERADE_TABLE}\ndelete table ip {MASQUERADE_TABLE}"
        );
        let nat = sys::nft_apply(&script).await;
        tracing::debug!(ok = nat.is_ok(), "gateway teardown: NAT tables removed");
        let rules = routing::remove(&table).await;
        tracing::debug!(
            ok = rules.is_ok(),
            "gateway teardown: rules and routes removed"
        );
        let tunnel = self.backend.teardown().await;
        tracing::debug!(ok = tunnel.is_ok(), "gateway teardown: tunnel removed");
        let results = [nat, rules, tunnel];
        *applied = None;
        results.into_iter().collect::<Result<Vec<()>>>().map(drop)
    }

    /// Runs the gateway from a fixed configuration (no Kubernetes resources) until `shutdown`
    /// resolves or the tunnel device stops: applies `config` at once and every `resync`
    /// (repairing whatever was removed behind its back; failures are logged and retried),
    /// logs the connection check's changes, then tears everything down.
    ///
    /// # Errors
    ///
    /// Only the teardown's: applying is retried until shutdown.
    pub async fn run_static(
        &self,
        config: &GatewayConfig,
        resync: std::time::Duration,
        check: conncheck::CheckOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(resync);
        let check = conncheck::ConnCheck::start(
            config.mode.tunnel_address().ip(),
            config.mode.peer_tunnel_ip(),
            check,
        );
        let mut state = check.subscribe();
        let mut configured = false;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    if configured && let Err(e) = self.backend.check().await {
                        tracing::error!(error = %e, "the tunnel stopped: shutting down");
                        break;
                    }
                    match self.apply(config).await {
                        Ok(()) if !configured => {
                            tracing::info!(
                                backend = self.backend.name(),
                                tunnel = %config.tunnel_interface,
                                "data plane configured"
                            );
                            configured = true;
                        }
                        Ok(()) => {}
                        Err(e) => tracing::warn!(error = %e, "applying the configuration failed; retrying"),
                    }
                }
                Ok(()) = state.changed() => {
                    let s = *state.borrow();
                    tracing::info!(connected = s.connected, latency = ?s.latency, "connection");
                }
            }
        }
        tracing::info!("shutting down: removing the tunnel, routes and NAT tables");
        drop(check);
        self.teardown().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use liqo_ipam::remap::Mapping;

    use super::*;

    fn config() -> GatewayConfig {
        let mut c = GatewayConfig::new(Mode::Server, PrivateKey::from_bytes([1; 32]), "eth0");
        c.remote = RemoteCidrs {
            pod: vec![
                Mapping::new(
                    "10.0.0.0/16".parse().unwrap(),
                    "10.71.0.0/16".parse().unwrap(),
                )
                .unwrap(),
            ],
            external: vec![Mapping::identity("10.90.0.0/16".parse().unwrap()).unwrap()],
        };
        c.local_pod_cidrs = vec!["10.0.0.0/16".parse().unwrap()];
        c.local_external_cidr = Some("10.70.0.0/16".parse().unwrap());
        c
    }

    #[test]
    fn tunnel_addresses_follow_upstream() {
        assert_eq!(Mode::Server.tunnel_address().to_string(), "169.254.18.1/30");
        assert_eq!(Mode::Client.tunnel_address().to_string(), "169.254.18.2/30");
        assert_eq!(Mode::Server.peer_tunnel_ip().to_string(), "169.254.18.2");
        assert!("sideways".parse::<Mode>().is_err());
    }

    #[test]
    fn nat_script_has_remap_and_masquerade() {
        let c = config();
        let script = c.nft_script().unwrap();
        assert!(script.contains("table ip remap-podcidr {"));
        assert!(script.contains("dnat prefix to 10.0.0.0/16"));
        // The identity external mapping gets no table, only the reset.
        assert!(!script.contains("table ip remap-externalcidr {"));
        assert!(
            script.contains(
                "oifname \"liqo-tunnel\" ip saddr != { 169.254.18.0/30, 10.0.0.0/16 } snat ip to 10.70.0.0"
            )
        );
        let mut full = c.clone();
        full.full_masquerade = true;
        assert!(full.nft_script().unwrap().contains(
            "oifname \"liqo-tunnel\" ip saddr != { 169.254.18.0/30 } snat ip to 10.70.0.0\n"
        ));
        let mut none = c;
        none.local_external_cidr = None;
        assert!(!none.nft_script().unwrap().contains("snat ip to"));
    }

    #[test]
    fn routes_cover_the_real_remote_cidrs() {
        let plan = config().routing_plan();
        assert_eq!(
            plan.routes(),
            vec![
                "10.0.0.0/16".parse().unwrap(),
                "10.90.0.0/16".parse().unwrap()
            ]
        );
    }

    #[test]
    fn validation() {
        let mut c = config();
        c.validate().unwrap();
        c.mode = Mode::Client;
        c.peer = Some(PeerConfig {
            public_key: PublicKey::from_bytes([2; 32]),
            endpoint: None,
        });
        assert!(matches!(c.validate(), Err(Error::InvalidConfig(_))));
        c.peer = None;
        c.default_interface = "liqo-tunnel".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn peer_spec_allows_everything_and_keeps_alive_towards_an_endpoint() {
        let mut c = config();
        c.peer = Some(PeerConfig {
            public_key: PublicKey::from_bytes([2; 32]),
            endpoint: Some("192.0.2.1:51840".parse().unwrap()),
        });
        let spec = c.peer_spec().unwrap();
        assert_eq!(spec.allowed_ips, vec!["0.0.0.0/0".parse().unwrap()]);
        assert!(spec.persistent_keepalive.is_some());
        assert_eq!(c.interface_spec().listen_port, 51840);
        c.mode = Mode::Client;
        assert_eq!(c.interface_spec().listen_port, 0);
    }
}
