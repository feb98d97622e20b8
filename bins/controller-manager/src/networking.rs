//! The networking module: the IPAM controllers (Network and IP resources) and the
//! Configuration controller (the peer's CIDRs remapped through the IPAM).

use std::sync::Arc;

use anyhow::Context as _;
use ipnetwork::IpNetwork;
use liqo_ipam::{TreeAllocator, controller};

use crate::Shared;

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

/// Runs the IPAM and Configuration controllers until shutdown.
pub(crate) async fn run(shared: Shared, args: NetworkingArgs) -> anyhow::Result<()> {
    let configurations = liqo_net::configuration::run(
        shared.client.clone(),
        liqo_net::configuration::Options::new(&shared.namespace),
        shared.shutdown.clone().wait_owned(),
    );
    let allocator =
        Arc::new(TreeAllocator::new(args.ipam_pools.clone()).context("invalid --ipam-pools")?);
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
    let (ipam, configurations) = tokio::join!(ipam, configurations);
    ipam.context("IPAM controllers")?;
    configurations.context("Configuration controller")
}
