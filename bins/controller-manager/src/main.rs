//! The liqo-rs controller manager: hosts the controllers of the Liqo modules. Today it runs
//! the IPAM controllers (Network and IP resources) of the networking module.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use ipnetwork::IpNetwork;
use liqo_ipam::{TreeAllocator, controller};

/// The liqo-rs controller manager.
///
/// Runs the IPAM controllers: every Network and IP resource gets a conflict-free allocation
/// written to its status (peers' overlapping CIDRs are remapped), the local pod, service,
/// external and internal CIDRs and reserved subnets are reserved first, and everything is
/// rebuilt from the resources at start.
///
/// Example:
///   liqo-controller-manager --kubeconfig ~/.kube/config \
///     --pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12
#[derive(Debug, Parser)]
#[command(name = "liqo-controller-manager", version, about, long_about)]
struct Args {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace where Liqo runs and keeps its own networks.
    #[arg(long, default_value = "liqo")]
    liqo_namespace: String,
    /// Address pools the IPAM allocates remapped CIDRs from (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    )]
    ipam_pools: Vec<IpNetwork>,
    /// The local pod CIDR(s), never handed out (repeatable or comma separated).
    #[arg(long, value_delimiter = ',')]
    pod_cidr: Vec<IpNetwork>,
    /// The local service CIDR, never handed out.
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let client = client(args.kubeconfig.as_deref()).await?;
    let allocator =
        Arc::new(TreeAllocator::new(args.ipam_pools.clone()).context("invalid --ipam-pools")?);
    let config = controller::Config {
        namespace: args.liqo_namespace,
        pod_cidrs: args.pod_cidr,
        service_cidr: args.service_cidr,
        external_cidr: args.external_cidr,
        internal_cidr: args.internal_cidr,
        reserved: args.reserved_subnets,
        workers: args.ipam_workers,
    };
    controller::run(
        client,
        allocator,
        config,
        liqo_core::runtime::shutdown_signal(),
    )
    .await
    .context("IPAM controllers")?;
    Ok(())
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found: pass --kubeconfig or set KUBECONFIG")?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}
