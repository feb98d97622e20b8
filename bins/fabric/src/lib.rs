//! The liqo-rs fabric agent (one per node) as a library: [`Args`] (its command line) and
//! [`run`]: the node's end of the in-cluster overlay to the gateways, with routes for the
//! peers' CIDRs over it. The shipped binary is a main of a few lines.
//!
//! Two modes:
//!
//! - **flags** (`--gateway-ip`, `--vni`, `--remote-cidr`, ...): one overlay, described on the
//!   command line;
//! - **resources** (`--node-name`, optionally `--kubeconfig`): one overlay per
//!   `InternalFabric` (one per gateway), with this node's `InternalNode` and the
//!   `GeneveTunnel`s, re-read at every resync.
//!
//! Either way it ensures the overlay at start, repairs it every `--resync-interval` (whatever
//! was deleted is re-created), and removes everything it created on SIGTERM or SIGINT. A
//! kill -9 leaves the link, routes and rules in place (traffic keeps flowing); the next start
//! adopts them, and removes overlay links and rules that no longer belong to any overlay
//! (`--cleanup-stale`, on by default).

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use liqo_core::api::networking::v1beta1::{GeneveTunnel, InternalFabric, InternalNode};
use liqo_net::overlay::{
    DEFAULT_OVERLAY_PORT, INTERFACE_PREFIX, NodeDefaults, Overlay, OverlayKind, OverlayLink,
    OverlaySpec, cleanup_stale, interface_name, node_specs,
};
use liqo_net::tunnel::DEFAULT_MTU;

/// The liqo-rs fabric agent: the node's end of the in-cluster overlay to the gateways.
///
/// Run one per node, in the node's network namespace (host network), as root. Either
/// describe one overlay with flags (--gateway-ip, --vni, --node-overlay-ip,
/// --gateway-overlay-ip, --remote-cidr) or read them from the InternalFabric and
/// InternalNode resources (--node-name).
#[derive(Debug, Parser)]
#[allow(missing_docs)] // the flags are documented for --help
#[command(name = "liqo-fabric", version, about, long_about = None)]
pub struct Args {
    /// This node's IP on the underlay. Resources mode: default the Node's InternalIP.
    #[arg(long, env = "LIQO_FABRIC_NODE_IP")]
    node_ip: Option<IpAddr>,
    /// Resources mode: this node's name (its InternalNode and Node).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Resources mode: the kubeconfig (default: in-cluster config or $KUBECONFIG).
    #[arg(long, requires = "node_name")]
    kubeconfig: Option<PathBuf>,
    /// Flags mode: the gateway's IP on the underlay (the gateway pod IP).
    #[arg(long, conflicts_with = "node_name")]
    gateway_ip: Option<IpAddr>,
    /// Flags mode: network identifier of the link (24 bits; upstream's GeneveTunnel id).
    #[arg(long, conflicts_with = "node_name")]
    vni: Option<u32>,
    /// Flags mode: this node's overlay address (InternalNode spec.interface.node.ip).
    #[arg(long, conflicts_with = "node_name")]
    node_overlay_ip: Option<Ipv4Addr>,
    /// Flags mode: the gateway's overlay address (InternalFabric spec.interface.gateway.ip).
    #[arg(long, conflicts_with = "node_name")]
    gateway_overlay_ip: Option<Ipv4Addr>,
    /// Flags mode: a remote CIDR to route to the gateway (repeat the flag).
    #[arg(long = "remote-cidr", conflicts_with = "node_name")]
    remote_cidrs: Vec<IpNetwork>,
    /// Flags mode: name of the overlay interface (default `liqo.` and a hash of the
    /// gateway IP and VNI).
    #[arg(long, conflicts_with = "node_name")]
    interface: Option<String>,
    /// Overlay type: vxlan or geneve (geneve needs the kernel's `geneve` module).
    #[arg(long, default_value = "vxlan")]
    overlay: OverlayKind,
    /// UDP port of the overlay, the same on the gateway.
    #[arg(long, default_value_t = DEFAULT_OVERLAY_PORT)]
    port: u16,
    /// MTU of the overlay interface (resources mode: when the InternalFabric sets none).
    #[arg(long, default_value_t = DEFAULT_MTU)]
    mtu: u32,
    /// Priority of the `ip rule`s (default: the kernel's choice, just before `main`).
    #[arg(long)]
    rule_priority: Option<u32>,
    /// Seconds between two repairs of the overlay (and, in resources mode, reads).
    #[arg(long, default_value_t = 5)]
    resync_interval: u64,
    /// At start, remove `liqo.*` overlay links and overlay rules that belong to no overlay of
    /// this agent (left by a dead one).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    cleanup_stale: bool,
    /// Work in this named network namespace (`ip -n`) instead of the process's; for tests
    /// and for an agent running outside the node's namespace.
    #[arg(long)]
    netns: Option<String>,
}

impl Args {
    /// The overlay of flags mode, or what is missing.
    fn flags_overlay(&self) -> Result<Overlay, String> {
        let missing: Vec<&str> = [
            ("--node-ip", self.node_ip.is_none()),
            ("--gateway-ip", self.gateway_ip.is_none()),
            ("--vni", self.vni.is_none()),
            ("--node-overlay-ip", self.node_overlay_ip.is_none()),
            ("--gateway-overlay-ip", self.gateway_overlay_ip.is_none()),
            ("--remote-cidr", self.remote_cidrs.is_empty()),
        ]
        .into_iter()
        .filter_map(|(flag, absent)| absent.then_some(flag))
        .collect();
        let (
            Some(node_ip),
            Some(gateway_ip),
            Some(vni),
            Some(node_overlay_ip),
            Some(gateway_overlay_ip),
        ) = (
            self.node_ip,
            self.gateway_ip,
            self.vni,
            self.node_overlay_ip,
            self.gateway_overlay_ip,
        )
        else {
            return Err(format!(
                "missing {} (or use --node-name to read the overlay from resources)",
                missing.join(", ")
            ));
        };
        if !missing.is_empty() {
            return Err(format!("missing {}", missing.join(", ")));
        }
        let link = OverlayLink::new(
            self.overlay,
            vni,
            node_ip,
            gateway_ip,
            node_overlay_ip,
            gateway_overlay_ip,
        )
        .with_port(self.port)
        .with_mtu(self.mtu);
        let interface = self
            .interface
            .clone()
            .unwrap_or_else(|| interface_name(&format!("{gateway_ip}/{vni}")));
        let spec = OverlaySpec::node(&link, interface, self.remote_cidrs.clone())
            .with_rule_priority(self.rule_priority);
        Overlay::new(spec)
            .map(|o| self.place(o))
            .map_err(|e| e.to_string())
    }

    fn place(&self, overlay: Overlay) -> Overlay {
        match &self.netns {
            Some(ns) => overlay.in_netns(ns),
            None => overlay,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.resync_interval.max(1))
    }
}

/// Runs the fabric agent until SIGTERM or SIGINT; the exit code the process ends with (2
/// for invalid flags, 1 for a failure, whose reason is on stderr).
pub async fn run(args: Args) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let result = if let Some(node_name) = &args.node_name {
        run_resources(&args, node_name).await
    } else {
        match args.flags_overlay() {
            Ok(overlay) => run_flags(&args, &overlay).await.map_err(|e| e.to_string()),
            Err(e) => {
                eprintln!("liqo-fabric: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liqo-fabric: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Flags mode: one overlay.
async fn run_flags(args: &Args, overlay: &Overlay) -> liqo_net::Result<()> {
    let spec = overlay.spec();
    tracing::info!(
        interface = %spec.interface,
        kind = %spec.kind,
        table = overlay.table(),
        remote_cidrs = ?spec.routes,
        "starting the fabric agent"
    );
    if args.cleanup_stale {
        let removed = cleanup_stale(args.netns.as_deref(), INTERFACE_PREFIX, &[overlay]).await?;
        if !removed.is_empty() {
            tracing::info!(?removed, "removed stale overlay state");
        }
    }
    // A configuration the kernel refuses (e.g. geneve without the module) is fatal at start;
    // later failures are retried at every resync.
    overlay.ensure().await?;
    tracing::info!("overlay ready");
    let shutdown = liqo_core::runtime::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(args.interval()) => match overlay.ensure().await {
                Ok(true) => tracing::info!("overlay repaired"),
                Ok(false) => tracing::debug!("overlay in place"),
                Err(e) => tracing::warn!(error = %e, "cannot repair the overlay; retrying"),
            },
        }
    }
    tracing::info!("shutting down: removing the overlay");
    overlay.remove().await?;
    tracing::info!("overlay removed");
    Ok(())
}

/// Resources mode: one overlay per InternalFabric, re-read at every resync.
async fn run_resources(args: &Args, node_name: &str) -> Result<(), String> {
    let client = liqo_core::runtime::kube_client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(node = node_name, "starting the fabric agent from resources");
    let mut active: BTreeMap<String, Overlay> = BTreeMap::new();
    let mut cleaned = !args.cleanup_stale;
    let shutdown = liqo_core::runtime::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        match desired(args, &client, node_name).await {
            Ok(next) => {
                for (interface, old) in &active {
                    if !next.contains_key(interface) {
                        match old.remove().await {
                            Ok(()) => tracing::info!(%interface, "overlay removed"),
                            Err(e) => tracing::warn!(%interface, error = %e, "cannot remove"),
                        }
                    }
                }
                if !cleaned {
                    let keep: Vec<&Overlay> = next.values().collect();
                    match cleanup_stale(args.netns.as_deref(), INTERFACE_PREFIX, &keep).await {
                        Ok(removed) => {
                            cleaned = true;
                            if !removed.is_empty() {
                                tracing::info!(?removed, "removed stale overlay state");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot remove stale state"),
                    }
                }
                for (interface, overlay) in &next {
                    match overlay.ensure().await {
                        Ok(true) => tracing::info!(%interface, "overlay created or repaired"),
                        Ok(false) => tracing::debug!(%interface, "overlay in place"),
                        Err(e) => tracing::warn!(%interface, error = %e, "cannot ensure overlay"),
                    }
                }
                active = next;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fabric resources; keeping the current overlays")
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(args.interval()) => {}
        }
    }
    tracing::info!("shutting down: removing the overlays");
    let mut failed = Vec::new();
    for (interface, overlay) in &active {
        if let Err(e) = overlay.remove().await {
            failed.push(format!("{interface}: {e}"));
        }
    }
    if !failed.is_empty() {
        return Err(format!("cannot remove {}", failed.join("; ")));
    }
    tracing::info!("overlay removed");
    Ok(())
}

/// The overlays the resources ask for, by interface name. Resources that cannot work are
/// logged and left out.
async fn desired(
    args: &Args,
    client: &kube::Client,
    node_name: &str,
) -> Result<BTreeMap<String, Overlay>, kube::Error> {
    let mut overlays = BTreeMap::new();
    let Some(node) = Api::<InternalNode>::all(client.clone())
        .get_opt(node_name)
        .await?
    else {
        tracing::warn!(node = node_name, "no InternalNode for this node yet");
        return Ok(overlays);
    };
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => match node_internal_ip(client, node_name).await? {
            Some(ip) => ip,
            None => {
                tracing::warn!(
                    node = node_name,
                    "the Node has no InternalIP; set --node-ip"
                );
                return Ok(overlays);
            }
        },
    };
    let fabrics = Api::<InternalFabric>::all(client.clone())
        .list(&Default::default())
        .await?
        .items;
    let tunnels = Api::<GeneveTunnel>::all(client.clone())
        .list(&Default::default())
        .await?
        .items;
    let mut defaults = NodeDefaults::new(node_name, node_ip);
    defaults.kind = args.overlay;
    defaults.port = args.port;
    defaults.mtu = args.mtu;
    defaults.rule_priority = args.rule_priority;
    for (fabric, spec) in node_specs(&defaults, &node, &fabrics, &tunnels) {
        match spec.and_then(Overlay::new) {
            Ok(overlay) => {
                overlays.insert(overlay.spec().interface.clone(), args.place(overlay));
            }
            Err(e) => tracing::warn!(%fabric, error = %e, "InternalFabric skipped"),
        }
    }
    Ok(overlays)
}

async fn node_internal_ip(
    client: &kube::Client,
    name: &str,
) -> Result<Option<IpAddr>, kube::Error> {
    let node = Api::<Node>::all(client.clone()).get_opt(name).await?;
    Ok(node
        .and_then(|n| n.status)
        .and_then(|s| s.addresses)
        .into_iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")
        .and_then(|a| a.address.parse().ok()))
}
