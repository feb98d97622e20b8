//! liqo-controller-manager with your own IPAM: the shipped binary's library
//! ([`liqo_controller_manager::run`]) with an [`IpamAllocator`] that wraps the default one and
//! records every decision (here on stdout; a real one might ask an external IPAM first).
//!
//! ```sh
//! cargo run -p liqo-examples --example custom_ipam -- \
//!   --kubeconfig target/testenv/rome/kubeconfig --cluster-id rome
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use clap::Parser as _;
use ipnetwork::IpNetwork;
use liqo_controller_manager::{Args, IpamAllocator, Plugins};
use liqo_ipam::{NetworkRequest, Result};

/// Delegates to `inner`, printing each allocation.
struct Audited<A> {
    inner: A,
}

#[async_trait]
impl<A: IpamAllocator> IpamAllocator for Audited<A> {
    async fn acquire_network(&self, req: NetworkRequest) -> Result<IpNetwork> {
        let wanted = req.cidr;
        let got = self.inner.acquire_network(req).await;
        match &got {
            Ok(net) => println!("ipam: network {wanted} -> {net}"),
            Err(e) => println!("ipam: network {wanted} refused: {e}"),
        }
        got
    }
    async fn release_network(&self, cidr: IpNetwork) -> Result<()> {
        println!("ipam: network {cidr} released");
        self.inner.release_network(cidr).await
    }
    async fn acquire_ip(&self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr> {
        let got = self.inner.acquire_ip(network, hint).await;
        if let Ok(ip) = &got {
            println!("ipam: address {ip} in {network}");
        }
        got
    }
    async fn release_ip(&self, network: IpNetwork, ip: IpAddr) -> Result<()> {
        self.inner.release_ip(network, ip).await
    }
    async fn is_network_available(&self, cidr: IpNetwork) -> Result<bool> {
        self.inner.is_network_available(cidr).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plugins = Plugins::default().ipam(|tree| Arc::new(Audited { inner: tree }));
    liqo_controller_manager::run(Args::parse(), plugins).await
}
