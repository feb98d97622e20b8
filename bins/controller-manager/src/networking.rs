//! The networking module: the IPAM controllers (Network and IP resources) and the
//! Configuration controller (the peer's CIDRs remapped through the IPAM).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use ipnetwork::IpNetwork;
use liqo_ipam::{TreeAllocator, controller};

use crate::{Shared, gateways};

/// Flags of the networking module.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Networking (IPAM)")]
pub(crate) struct NetworkingArgs {
    /// Address pools the IPAM allocates remapped CIDRs from (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    )]
    ipam_pools: Vec<IpNetwork>,
    /// The local pod CIDR(s), never handed out (repeatable or comma separated). Default:
    /// detected from ConfigMap kube-system/kubeadm-config or kube-system/kube-proxy;
    /// networking does not start without it.
    #[arg(long, value_delimiter = ',')]
    pod_cidr: Vec<IpNetwork>,
    /// The local service CIDR, never handed out. Default: detected (kubeadm-config, or the
    /// ServiceCIDR `kubernetes`).
    #[arg(long)]
    service_cidr: Option<IpNetwork>,
    /// CIDR that local hosts exposed to peers get addresses from; its first address is the
    /// unknown-source IP.
    #[arg(long, default_value = "10.70.0.0/16")]
    external_cidr: IpNetwork,
    /// CIDR of the in-cluster fabric.
    #[arg(long, default_value = "10.80.0.0/16")]
    internal_cidr: IpNetwork,
    /// Further subnets never handed out, e.g. the node network (comma separated).
    #[arg(long, value_delimiter = ',')]
    reserved_subnets: Vec<IpNetwork>,
    /// Concurrent reconciles of each IPAM controller.
    #[arg(long, default_value_t = 4)]
    ipam_workers: u16,
    /// Who runs the gateways of GatewayServers and GatewayClients: `none` (gateway pods, or
    /// started by hand), or `netns` (processes here, each in a network namespace plugged into
    /// the host bridge liqo-gw-br; needs root; for playgrounds and tests on one host).
    #[arg(long, default_value = "none", value_parser = ["none", "netns"])]
    gateway_launcher: String,
    /// The liqo-gateway binary (default: next to this one).
    #[arg(long)]
    gateway_binary: Option<PathBuf>,
    /// Append each gateway's output to a file in this directory.
    #[arg(long)]
    gateway_log_dir: Option<PathBuf>,
}

/// Fills in the pod and service CIDRs not given on the command line from what the cluster
/// records; without a pod CIDR networking cannot work, and the error names the flag.
async fn cluster_cidrs(shared: &Shared, args: &mut NetworkingArgs) -> anyhow::Result<()> {
    if !args.pod_cidr.is_empty() && args.service_cidr.is_some() {
        return Ok(());
    }
    let found = liqo_net::cluster_cidrs::detect(&shared.client)
        .await
        .context("detecting the cluster's pod and service CIDRs")?;
    if args.pod_cidr.is_empty() {
        args.pod_cidr = found.pod;
    }
    if args.service_cidr.is_none() {
        args.service_cidr = found.service;
    }
    if args.pod_cidr.is_empty() {
        anyhow::bail!(
            "networking needs this cluster's pod CIDR, and it could not be detected (no \
             ConfigMap kube-system/kubeadm-config or kube-system/kube-proxy records it): pass \
             --pod-cidr (and --service-cidr), or --enable-networking=false to run without the \
             network fabric"
        );
    }
    tracing::info!(pod_cidr = ?args.pod_cidr.iter().map(ToString::to_string).collect::<Vec<_>>(),
        service_cidr = ?args.service_cidr.map(|c| c.to_string()), sources = ?found.sources,
        "cluster CIDRs detected");
    Ok(())
}

/// The port of a loopback API server URL (`https://127.0.0.1:6443`), to forward into the
/// gateways' namespaces; `None` for any other host.
fn loopback_port(url: &str) -> Option<u16> {
    let authority = url.strip_prefix("https://")?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

/// The gateway launcher of `--gateway-launcher netns`, running until shutdown.
async fn gateways(
    shared: Shared,
    launcher: String,
    binary: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<()> {
    if launcher != "netns" {
        return Ok(());
    }
    let program = match binary {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating this binary")?
            .with_file_name("liqo-gateway"),
    };
    let mut base = Vec::new();
    if let Some(kc) = kubeconfig {
        base.extend(["--kubeconfig".to_owned(), kc.display().to_string()]);
    }
    let launcher = Arc::new(gateways::NetnsLauncher::new(
        program,
        base,
        loopback_port(&shared.kube_server),
        log_dir,
    ));
    tracing::info!("starting gateways in network namespaces (--gateway-launcher netns)");
    gateways::run(
        shared.client.clone(),
        shared.cluster_id.clone(),
        launcher,
        shared.shutdown.clone().wait_owned(),
    )
    .await;
    Ok(())
}

/// Runs the IPAM and Configuration controllers (and the gateway launcher) until shutdown.
pub(crate) async fn run(
    shared: Shared,
    mut args: NetworkingArgs,
    kubeconfig: Option<PathBuf>,
    ipam: crate::Decorator<TreeAllocator, dyn liqo_ipam::IpamAllocator>,
) -> anyhow::Result<()> {
    cluster_cidrs(&shared, &mut args).await?;
    let gateways = gateways(
        shared.clone(),
        args.gateway_launcher.clone(),
        args.gateway_binary.clone(),
        args.gateway_log_dir.clone(),
        kubeconfig,
    );
    let configurations = liqo_net::configuration::run(
        shared.client.clone(),
        liqo_net::configuration::Options::new(&shared.namespace),
        shared.shutdown.clone().wait_owned(),
    );
    let allocator =
        ipam(TreeAllocator::new(args.ipam_pools.clone()).context("invalid --ipam-pools")?);
    let config = controller::Config {
        namespace: shared.namespace.clone(),
        pod_cidrs: args.pod_cidr,
        service_cidr: args.service_cidr,
        external_cidr: args.external_cidr,
        internal_cidr: args.internal_cidr,
        reserved: args.reserved_subnets,
        workers: args.ipam_workers,
    };
    let ipam = controller::run(
        shared.client,
        allocator,
        config,
        shared.shutdown.wait_owned(),
    );
    let (ipam, configurations, gateways) = tokio::join!(ipam, configurations, gateways);
    ipam.context("IPAM controllers")?;
    gateways.context("gateway launcher")?;
    configurations.context("Configuration controller")
}

#[cfg(test)]
mod tests {
    use super::loopback_port;

    #[test]
    fn only_loopback_servers_are_forwarded() {
        assert_eq!(loopback_port("https://127.0.0.1:40123"), Some(40123));
        assert_eq!(loopback_port("https://localhost:6443/"), Some(6443));
        assert_eq!(loopback_port("https://10.0.0.1:6443"), None);
        assert_eq!(loopback_port("http://127.0.0.1:80"), None);
    }
}
