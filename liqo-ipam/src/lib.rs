//! IP address management for liqo-rs: conflict-free CIDR and address allocation, persisted in
//! `ipam.liqo.io/v1alpha1` Network and IP resources.
//!
//! Independent clusters often use the same pod CIDR. To route between them, each cluster sees
//! a peer's CIDRs through a *remapped* CIDR that does not collide with anything it uses itself;
//! the gateways translate addresses 1:1 with prefix NAT. This crate decides those CIDRs.
//!
//! - [`IpamAllocator`]: the seam. An object-safe async trait; swap the default for an external
//!   IPAM (NetBox, a cloud VPC IPAM) by implementing it.
//! - [`TreeAllocator`]: the default, a binary prefix tree per address pool
//!   ([`core::Ipam`]), as upstream Liqo's.
//! - [`controller`]: the controllers that turn Network and IP resources into allocations written
//!   to their status, rebuild the allocator from those statuses on start, and release them
//!   through finalizers. The API server is the source of truth.
//! - [`remap`]: 1:1 translation of addresses and prefixes between a peer's real CIDR and its
//!   remapped CIDR, used by NAT rules and by the reflection of pod and endpoint IPs.
//!
//! ```
//! use liqo_ipam::{IpamAllocator, NetworkRequest, TreeAllocator};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> liqo_ipam::Result<()> {
//! let ipam = TreeAllocator::with_default_pools();
//! // The local pod CIDR is never handed out to anyone else.
//! let local = ipam.acquire_network(NetworkRequest::new("10.0.0.0/16".parse().unwrap()).immutable()).await?;
//! // A peer with the same pod CIDR gets it remapped to the first free /16.
//! let peer = ipam.acquire_network(NetworkRequest::new("10.0.0.0/16".parse().unwrap())).await?;
//! assert_eq!(local.to_string(), "10.0.0.0/16");
//! assert_eq!(peer.to_string(), "10.1.0.0/16");
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::{net::IpAddr, sync::Arc};

use async_trait::async_trait;
use ipnetwork::IpNetwork;

mod allocator;
pub mod controller;
pub mod core;
pub mod error;
pub mod naive;
pub mod remap;

pub use crate::core::NetworkRequest;
pub use allocator::TreeAllocator;
pub use error::{Error, Result};

/// Allocates networks and addresses without conflicts.
///
/// Implementations must be safe to call concurrently and must never hand out overlapping
/// exclusive networks. The controllers of this crate rebuild an allocator's state on start by
/// acquiring, as immutable requests, every CIDR and address already recorded in the status of
/// Network and IP resources, before they serve anything new.
///
/// # Implementing it
///
/// A complete (if simplistic) allocator that hands out consecutive /24s of one /16 and never
/// remaps anything else:
///
/// ```
/// use std::{collections::BTreeSet, net::IpAddr, sync::Mutex};
///
/// use async_trait::async_trait;
/// use ipnetwork::IpNetwork;
/// use liqo_ipam::{Error, IpamAllocator, NetworkRequest, Result};
///
/// #[derive(Default)]
/// struct SlashTwentyFours {
///     taken: Mutex<BTreeSet<u8>>,
/// }
///
/// fn third_octet(net: IpNetwork) -> Option<u8> {
///     match net {
///         IpNetwork::V4(n) if n.prefix() == 24 && n.ip().octets()[..2] == [10, 42] => Some(n.ip().octets()[2]),
///         _ => None,
///     }
/// }
///
/// #[async_trait]
/// impl IpamAllocator for SlashTwentyFours {
///     async fn acquire_network(&self, req: NetworkRequest) -> Result<IpNetwork> {
///         let mut taken = self.taken.lock().map_err(|e| Error::Backend(e.to_string().into()))?;
///         let wanted = third_octet(req.cidr).filter(|o| !taken.contains(o));
///         let octet = match wanted {
///             Some(o) => o,
///             None if req.immutable => {
///                 return Err(Error::Unavailable { cidr: req.cidr, reason: "taken or outside 10.42.0.0/16".into() });
///             }
///             None => (0..=255u8).find(|o| !taken.contains(o)).ok_or(Error::PoolExhausted {
///                 prefix_len: 24,
///                 pools: vec!["10.42.0.0/16".parse().unwrap()],
///             })?,
///         };
///         taken.insert(octet);
///         Ok(format!("10.42.{octet}.0/24").parse().unwrap())
///     }
///     async fn release_network(&self, cidr: IpNetwork) -> Result<()> {
///         if let Some(o) = third_octet(cidr) {
///             self.taken.lock().map_err(|e| Error::Backend(e.to_string().into()))?.remove(&o);
///         }
///         Ok(())
///     }
///     async fn acquire_ip(&self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr> {
///         Err(Error::Backend("this allocator does not hand out single addresses".into()))
///     }
///     async fn release_ip(&self, _network: IpNetwork, _ip: IpAddr) -> Result<()> {
///         Ok(())
///     }
///     async fn is_network_available(&self, cidr: IpNetwork) -> Result<bool> {
///         let taken = self.taken.lock().map_err(|e| Error::Backend(e.to_string().into()))?;
///         Ok(third_octet(cidr).is_some_and(|o| !taken.contains(&o)))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// // Usable wherever liqo-rs takes an allocator:
/// let ipam: std::sync::Arc<dyn IpamAllocator> = std::sync::Arc::new(SlashTwentyFours::default());
/// let net = ipam.acquire_network(NetworkRequest::new("10.0.0.0/16".parse().unwrap())).await?;
/// assert_eq!(net.to_string(), "10.42.0.0/24");
/// # Ok(()) }
/// ```
#[async_trait]
pub trait IpamAllocator: Send + Sync + 'static {
    /// Acquires a network: `req.cidr` itself when it is free, otherwise (unless the request is
    /// immutable) the first free prefix of the same length. Returns the network acquired.
    #[doc(alias = "NetworkAcquire")]
    async fn acquire_network(&self, req: NetworkRequest) -> Result<IpNetwork>;

    /// Releases a network acquired before. Releasing a network that is not allocated is not an
    /// error.
    #[doc(alias = "NetworkRelease")]
    async fn release_network(&self, cidr: IpNetwork) -> Result<()>;

    /// Acquires an address inside an acquired network: `hint` exactly when given, otherwise
    /// the next free one.
    #[doc(alias = "IPAcquire")]
    async fn acquire_ip(&self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr>;

    /// Releases an address. Releasing an address that is not allocated is not an error.
    #[doc(alias = "IPRelease")]
    async fn release_ip(&self, network: IpNetwork, ip: IpAddr) -> Result<()>;

    /// Whether `cidr` could be acquired exactly, as an exclusive network, right now.
    #[doc(alias = "NetworkIsAvailable")]
    async fn is_network_available(&self, cidr: IpNetwork) -> Result<bool>;
}

#[async_trait]
impl<T: IpamAllocator + ?Sized> IpamAllocator for Arc<T> {
    async fn acquire_network(&self, req: NetworkRequest) -> Result<IpNetwork> {
        (**self).acquire_network(req).await
    }
    async fn release_network(&self, cidr: IpNetwork) -> Result<()> {
        (**self).release_network(cidr).await
    }
    async fn acquire_ip(&self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr> {
        (**self).acquire_ip(network, hint).await
    }
    async fn release_ip(&self, network: IpNetwork, ip: IpAddr) -> Result<()> {
        (**self).release_ip(network, ip).await
    }
    async fn is_network_available(&self, cidr: IpNetwork) -> Result<bool> {
        (**self).is_network_available(cidr).await
    }
}

/// Compile-time guard: the trait stays object safe.
#[allow(dead_code)]
fn _assert_object_safe(_: &dyn IpamAllocator) {}
