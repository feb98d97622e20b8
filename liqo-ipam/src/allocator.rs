//! The default allocator: [`core::Ipam`](crate::core::Ipam) behind a mutex.

use std::{
    net::IpAddr,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use ipnetwork::IpNetwork;

use crate::{Error, IpamAllocator, NetworkRequest, Result, core::Ipam};

/// The default [`IpamAllocator`]: one binary prefix tree per pool (see [`Ipam`]), kept in
/// memory and rebuilt from Network and IP resources by the [controllers](crate::controller).
///
/// Every call is short and synchronous under a mutex, so it is safe to share in an `Arc` among
/// any number of tasks.
///
/// ```
/// use liqo_ipam::{IpamAllocator, NetworkRequest, TreeAllocator};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> liqo_ipam::Result<()> {
/// let ipam = TreeAllocator::new(["192.168.0.0/16".parse().unwrap()])?;
/// let a = ipam.acquire_network(NetworkRequest::new("10.0.0.0/24".parse().unwrap())).await?;
/// assert_eq!(a.to_string(), "192.168.0.0/24"); // outside the pools: remapped into them
/// let ip = ipam.acquire_ip(a, None).await?;
/// assert!(a.contains(ip));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TreeAllocator {
    inner: Mutex<Ipam>,
}

impl TreeAllocator {
    /// An allocator over `pools` (they must not overlap).
    pub fn new(pools: impl IntoIterator<Item = IpNetwork>) -> Result<Self> {
        Ok(Self::from_ipam(Ipam::new(pools)?))
    }

    /// An allocator over the private IPv4 ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16.
    pub fn with_default_pools() -> Self {
        Self::from_ipam(Ipam::with_default_pools())
    }

    /// Wraps an existing [`Ipam`] state.
    pub fn from_ipam(ipam: Ipam) -> Self {
        Self {
            inner: Mutex::new(ipam),
        }
    }

    /// A copy of the current state, for inspection and tests.
    pub fn snapshot(&self) -> Result<Ipam> {
        Ok(self.lock()?.clone())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Ipam>> {
        // A panic while holding the lock leaves a state we can no longer trust.
        self.inner.lock().map_err(|_| {
            Error::Backend("the allocator state is poisoned by an earlier panic".into())
        })
    }
}

#[async_trait]
impl IpamAllocator for TreeAllocator {
    async fn acquire_network(&self, req: NetworkRequest) -> Result<IpNetwork> {
        self.lock()?.acquire_network(&req)
    }

    async fn release_network(&self, cidr: IpNetwork) -> Result<()> {
        self.lock()?.release_network(cidr).map(drop)
    }

    async fn acquire_ip(&self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr> {
        self.lock()?.acquire_ip(network, hint)
    }

    async fn release_ip(&self, network: IpNetwork, ip: IpAddr) -> Result<()> {
        self.lock()?.release_ip(network, ip).map(drop)
    }

    async fn is_network_available(&self, cidr: IpNetwork) -> Result<bool> {
        Ok(self.lock()?.is_network_available(cidr))
    }
}
