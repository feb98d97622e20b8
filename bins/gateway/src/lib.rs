//! The liqo-rs gateway as a library: [`Args`] (its command line) and
//! [`run`]`(args, backend)`: tunnel, policy routing and NAT towards a peer cluster over any
//! [`TunnelBackend`]. The shipped binary picks WireGuard or VXLAN with `--backend`
//! ([`shipped_backend`]); a third party's binary passes its own backend:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use clap::Parser as _;
//! use liqo_gateway::Args;
//! use liqo_net::wireguard::{Implementation, WireGuardBackend};
//!
//! let backend = Arc::new(WireGuardBackend::new(Implementation::Userspace));
//! liqo_gateway::main_with(Args::parse(), backend);
//! ```
#![warn(missing_docs)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use liqo_core::ids::ClusterId;
use liqo_net::gateway::conncheck::CheckOptions;
use liqo_net::gateway::file::{self, FileDefaults};
use liqo_net::gateway::{Gateway, GatewayConfig, Mode, controller};
use liqo_net::tunnel::TunnelBackend;
use liqo_net::wireguard::{Implementation, WireGuardBackend};

/// The liqo-rs gateway: one per peering and side. It owns the tunnel to the peer's gateway
/// (WireGuard, kernel or embedded userspace), the policy routing that sends the peer's CIDRs
/// into it, and the nftables NAT for overlapping CIDRs, and reports the connection.
///
/// With a cluster (default), it is driven by the GatewayServer or GatewayClient named
/// --name in --namespace, the peer's PublicKey and the peering's Configuration, and writes
/// the Connection `gw-<name>`:
///
///   liqo-gateway --mode server --name rome --namespace liqo-tenant-rome \
///     --remote-cluster-id rome --endpoint-address 192.0.2.10
///
/// Without a cluster, --config runs it from a YAML file (see docs/networking.md):
///
///   liqo-gateway --config gateway.yaml
///
/// SIGTERM or SIGINT removes the tunnel, the rules, the routing table and the NAT tables.
/// Run one gateway per network namespace (as upstream's gateway pods).
#[derive(Debug, Parser)]
#[allow(missing_docs)] // the flags are documented for --help
#[command(
    name = "liqo-gateway",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Args {
    /// Static configuration file (no Kubernetes); the other resource flags are ignored.
    #[arg(long, conflicts_with_all = ["name", "namespace", "remote_cluster_id"])]
    config: Option<PathBuf>,
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Server (listens) or client (connects to the server).
    #[arg(long, value_parser = ["server", "client"], default_value = "server")]
    mode: String,
    /// Name of the GatewayServer or GatewayClient resource.
    #[arg(long, required_unless_present = "config")]
    name: Option<String>,
    /// Namespace of the resource (the peer's tenant namespace).
    #[arg(long, required_unless_present = "config")]
    namespace: Option<String>,
    /// Cluster id of the peer.
    #[arg(long, required_unless_present = "config")]
    remote_cluster_id: Option<String>,
    /// Tunnel interface name (must be unique per host for userspace WireGuard).
    #[arg(long, default_value = liqo_net::tunnel::DEFAULT_INTERFACE_NAME)]
    tunnel_interface: String,
    /// The tunnel: wireguard (encrypted; the default) or vxlan (plain, for trusted links).
    #[arg(long, default_value = "wireguard", value_parser = ["wireguard", "vxlan"])]
    backend: String,
    /// WireGuard implementation: auto (kernel if the module is there), kernel, userspace.
    #[arg(long, default_value = "auto")]
    implementation: Implementation,
    /// VXLAN network identifier (--backend vxlan).
    #[arg(long, default_value_t = 1000)]
    vni: u32,
    /// Server: the address advertised in status.endpoint (default: the default interface's).
    #[arg(long)]
    endpoint_address: Option<IpAddr>,
    /// The interface towards the outside, never NATed (default: the default route's).
    #[arg(long)]
    default_interface: Option<String>,
    /// Source-NAT all traffic to the peer to the unknown-source IP.
    #[arg(long)]
    full_masquerade: bool,
    /// UDP port of the connection check on the tunnel addresses.
    #[arg(long, default_value_t = liqo_net::gateway::conncheck::DEFAULT_PORT)]
    ping_port: u16,
    /// Seconds between two connection-check pings.
    #[arg(long, default_value_t = 2.0)]
    ping_interval: f64,
    /// Lost pings in a row before the connection counts as down.
    #[arg(long, default_value_t = liqo_net::gateway::conncheck::DEFAULT_LOSS_THRESHOLD)]
    ping_loss_threshold: u32,
    /// Seconds between two checks that the data plane is still in place.
    #[arg(long, default_value_t = 5.0)]
    resync: f64,
}

async fn static_config(path: &Path, args: &Args) -> anyhow::Result<GatewayConfig> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let mut defaults = FileDefaults::new(args.tunnel_interface.clone());
    defaults.default_interface = args.default_interface.clone();
    defaults.full_masquerade = args.full_masquerade;
    file::from_yaml(&text, &defaults)
        .await
        .with_context(|| format!("{}", path.display()))
}

/// Removes what a killed gateway may have left: a stale userspace socket, a kernel link.
async fn clean_stale(tunnel: &str) -> anyhow::Result<()> {
    let name = tunnel.to_owned();
    let removed =
        tokio::task::spawn_blocking(move || liqo_net::wireguard::remove_stale_socket(&name))
            .await
            .context("stale socket check panicked")?
            .with_context(|| format!("tunnel {tunnel}"))?;
    if removed {
        tracing::info!(tunnel, "removed the stale socket of a previous process");
    }
    if liqo_net::sys::link_exists(tunnel).await {
        tracing::info!(tunnel, "removing the link left by a previous process");
        liqo_net::sys::ip(&["link", "delete", "dev", tunnel]).await?;
    }
    Ok(())
}

fn check_options(args: &Args) -> CheckOptions {
    CheckOptions {
        port: args.ping_port,
        interval: Duration::from_secs_f64(args.ping_interval.max(0.05)),
        loss_threshold: args.ping_loss_threshold.max(1),
    }
}

/// The backend the shipped binary runs: `--backend wireguard` ([`WireGuardBackend`], kernel
/// or userspace per `--implementation`) or `--backend vxlan` (`VxlanBackend`, `--vni`).
///
/// # Errors
///
/// When the VXLAN backend cannot be built (an invalid VNI).
pub fn shipped_backend(args: &Args) -> anyhow::Result<Arc<dyn TunnelBackend>> {
    Ok(match args.backend.as_str() {
        "vxlan" => Arc::new(liqo_net::vxlan::VxlanBackend::new(args.vni).context("--vni")?),
        _ => Arc::new(WireGuardBackend::new(args.implementation)),
    })
}

/// Runs [`run`] on a runtime of its own and exits the process with its outcome (1 and the
/// error on stderr when it fails): what a gateway binary's `main` calls.
pub fn main_with(args: Args, backend: Arc<dyn TunnelBackend>) -> ! {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("liqo-gateway: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(args, backend)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("liqo-gateway: {e:#}");
            1
        }
    };
    // A call stuck on a stopped userspace device must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

/// Runs the gateway with `backend` until SIGTERM or SIGINT, from the resources of the cluster
/// or from `--config`; on the way out it removes its tunnel, rules, table and NAT tables.
///
/// # Errors
///
/// When the configuration is invalid, the cluster cannot be reached or the data plane cannot
/// be set up; the error says which.
pub async fn run(args: Args, backend: Arc<dyn TunnelBackend>) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let gateway = Arc::new(Gateway::new(backend.clone()));
    if let Some(path) = &args.config {
        let config = static_config(path, &args).await?;
        clean_stale(&config.tunnel_interface).await?;
        gateway
            .run_static(
                &config,
                Duration::from_secs_f64(args.resync),
                check_options(&args),
                liqo_core::runtime::shutdown_signal(),
            )
            .await?;
        return Ok(());
    }
    let mode: Mode = args.mode.parse()?;
    let (Some(name), Some(namespace), Some(remote)) = (
        args.name.as_deref(),
        args.namespace.as_deref(),
        args.remote_cluster_id.as_deref(),
    ) else {
        anyhow::bail!("--name, --namespace and --remote-cluster-id are required without --config");
    };
    let remote = ClusterId::new(remote).context("--remote-cluster-id")?;
    let client = liqo_core::runtime::kube_client(args.kubeconfig.as_deref()).await?;
    clean_stale(&args.tunnel_interface).await?;
    let mut options = controller::Options::new(mode, name, namespace, remote);
    options.tunnel_interface = args.tunnel_interface.clone();
    options.endpoint_address = args.endpoint_address;
    options.default_interface = args.default_interface.clone();
    options.full_masquerade = args.full_masquerade;
    options.check = check_options(&args);
    options.resync = Duration::from_secs_f64(args.resync.max(0.5));
    tracing::info!(
        mode = args.mode,
        name,
        namespace,
        backend = backend.name(),
        "liqo-gateway starting"
    );
    controller::run(
        client,
        gateway,
        options,
        liqo_core::runtime::shutdown_signal(),
    )
    .await?;
    Ok(())
}
