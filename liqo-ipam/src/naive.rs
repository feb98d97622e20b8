//! A naive linear-scan allocator: the baseline of the benchmarks and a readable reference.
//!
//! **Not for production.** [`LinearAllocator`] keeps its allocations in a plain `Vec` and, to
//! find a free prefix, tries candidate prefixes one after the other in pool order, checking
//! each against every allocation. Its cost grows with the number of allocations (quadratically
//! for a search), which is what the benchmarks compare [`Ipam`](crate::core::Ipam) against.
//!
//! It follows the same rules as [`Ipam`](crate::core::Ipam) for network requests, with one
//! difference: a mutable request that cannot have its preferred CIDR gets the free prefix with
//! the *lowest address*, while the tree also prefers halves that are already split (upstream's
//! anti-fragmentation heuristic). The two agree whenever allocations are packed from the start
//! of the pools, as in the benchmarks. It does not manage single addresses: `pre_allocated` is
//! validated and otherwise ignored.

use ipnetwork::IpNetwork;

use crate::{
    core::{NetworkRequest, Prefix, check_pre_allocated_for},
    error::{Error, Result},
};

#[derive(Debug, Clone, Copy)]
struct Entry {
    prefix: Prefix,
    /// Reference count of a shared allocation; 0 for an exclusive one.
    shared: u32,
}

impl Entry {
    fn overlaps(&self, other: Prefix) -> bool {
        self.prefix.contains(other) || other.contains(self.prefix)
    }
}

/// A linear-scan network allocator: the baseline for benchmarks, not for production.
///
/// ```
/// use liqo_ipam::{core::NetworkRequest, naive::LinearAllocator};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut naive = LinearAllocator::with_default_pools();
/// let a = naive.acquire_network(&NetworkRequest::new("10.0.0.0/24".parse()?))?;
/// let b = naive.acquire_network(&NetworkRequest::new("10.0.0.0/24".parse()?))?;
/// assert_eq!((a.to_string().as_str(), b.to_string().as_str()), ("10.0.0.0/24", "10.0.1.0/24"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LinearAllocator {
    pools: Vec<Prefix>,
    allocations: Vec<Entry>,
}

impl LinearAllocator {
    /// An allocator over `pools`, searched in the order given.
    ///
    /// # Errors
    ///
    /// As [`Ipam::new`](crate::core::Ipam::new).
    pub fn new(pools: impl IntoIterator<Item = IpNetwork>) -> Result<Self> {
        let mut out: Vec<Prefix> = Vec::new();
        for net in pools {
            let p = Prefix::canonical(net)?;
            if let Some(other) = out.iter().find(|o| o.contains(p) || p.contains(**o)) {
                return Err(Error::OverlappingPools(other.network(), net));
            }
            out.push(p);
        }
        if out.is_empty() {
            return Err(Error::NoPools);
        }
        Ok(Self {
            pools: out,
            allocations: Vec::new(),
        })
    }

    /// An allocator over the default RFC 1918 pools.
    #[must_use]
    pub fn with_default_pools() -> Self {
        let core = crate::core::Ipam::with_default_pools();
        let pools = core
            .pools()
            .into_iter()
            .filter_map(|n| Prefix::canonical(n).ok())
            .collect();
        Self {
            pools,
            allocations: Vec::new(),
        }
    }

    /// Acquires a network with the same rules as
    /// [`Ipam::acquire_network`](crate::core::Ipam::acquire_network) (see the module
    /// documentation for the one difference in the search order).
    ///
    /// # Errors
    ///
    /// As [`Ipam::acquire_network`](crate::core::Ipam::acquire_network).
    pub fn acquire_network(&mut self, req: &NetworkRequest) -> Result<IpNetwork> {
        let target = Prefix::canonical(req.cidr)?;
        check_pre_allocated_for(req.cidr, req.pre_allocated)?;
        let in_pool = self.pools.iter().any(|p| p.contains(target));
        if req.immutable {
            if !in_pool {
                if req.exclusive {
                    return Err(Error::OutsidePools(req.cidr));
                }
                if !self.pools.iter().any(|p| target.contains(*p)) {
                    // Disjoint from every pool: implicitly reserved, not tracked.
                    return Ok(req.cidr);
                }
            }
            return self.acquire_exact(target, req.exclusive);
        }
        if in_pool && self.conflict(target, true).is_none() {
            self.allocations.push(Entry {
                prefix: target,
                shared: 0,
            });
            return Ok(target.network());
        }
        let same_family: Vec<Prefix> = self
            .pools
            .iter()
            .copied()
            .filter(|p| p.fam == target.fam)
            .collect();
        if same_family.is_empty() {
            return Err(Error::FamilyMismatch {
                subject: format!("network {}", req.cidr),
                other: "every pool".to_owned(),
            });
        }
        for pool in same_family.iter().filter(|p| p.len <= target.len) {
            if let Some(found) = self.scan(*pool, target.len) {
                self.allocations.push(Entry {
                    prefix: found,
                    shared: 0,
                });
                return Ok(found.network());
            }
        }
        Err(Error::PoolExhausted {
            prefix_len: target.len,
            pools: same_family.iter().map(|p| p.network()).collect(),
        })
    }

    /// Releases one acquisition of `cidr`; `Ok(false)` when it is not allocated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when host bits are set.
    pub fn release_network(&mut self, cidr: IpNetwork) -> Result<bool> {
        let target = Prefix::canonical(cidr)?;
        let Some(i) = self.allocations.iter().position(|e| e.prefix == target) else {
            return Ok(false);
        };
        if self.allocations[i].shared > 1 {
            self.allocations[i].shared -= 1;
        } else {
            self.allocations.swap_remove(i);
        }
        Ok(true)
    }

    /// Whether `cidr` lies in a pool and overlaps no allocation.
    #[must_use]
    pub fn is_network_available(&self, cidr: IpNetwork) -> bool {
        Prefix::canonical(cidr).is_ok_and(|t| {
            self.pools.iter().any(|p| p.contains(t)) && self.conflict(t, true).is_none()
        })
    }

    /// The tracked allocations, sorted.
    #[must_use]
    pub fn networks(&self) -> Vec<IpNetwork> {
        let mut out: Vec<IpNetwork> = self
            .allocations
            .iter()
            .map(|e| e.prefix.network())
            .collect();
        out.sort_unstable();
        out
    }

    /// The first allocation that `target` may not overlap (any, for an exclusive request; an
    /// exclusive one, for a shared request).
    fn conflict(&self, target: Prefix, exclusive: bool) -> Option<&Entry> {
        self.allocations
            .iter()
            .find(|e| (exclusive || e.shared == 0) && e.overlaps(target))
    }

    fn acquire_exact(&mut self, target: Prefix, exclusive: bool) -> Result<IpNetwork> {
        if let Some(e) = self.conflict(target, exclusive) {
            return Err(Error::Unavailable {
                cidr: target.network(),
                reason: format!("it overlaps {}", e.prefix.network()),
            });
        }
        match self
            .allocations
            .iter_mut()
            .find(|e| e.prefix == target && e.shared > 0)
        {
            Some(e) => e.shared = e.shared.saturating_add(1),
            None => self.allocations.push(Entry {
                prefix: target,
                shared: if exclusive { 0 } else { 1 },
            }),
        }
        Ok(target.network())
    }

    /// The first `/len` candidate in `pool` that overlaps no allocation.
    fn scan(&self, pool: Prefix, len: u8) -> Option<Prefix> {
        let end = pool.last();
        let mut base = pool.base;
        loop {
            let candidate = Prefix {
                fam: pool.fam,
                base,
                len,
            };
            let Some(hit) = self.allocations.iter().find(|e| e.overlaps(candidate)) else {
                return Some(candidate);
            };
            // Skip past the candidate or the allocation, whichever ends later; both are aligned
            // prefixes, so the next candidate stays aligned.
            let next = candidate.last().max(hit.prefix.last());
            if next >= end {
                return None;
            }
            base = next + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn fills_in_address_order_and_exhausts() {
        let mut naive = LinearAllocator::new([net("192.168.0.0/23"), net("10.0.0.0/24")]).unwrap();
        let req = NetworkRequest::new(net("10.0.0.0/24"));
        assert_eq!(naive.acquire_network(&req).unwrap(), net("10.0.0.0/24"));
        assert_eq!(naive.acquire_network(&req).unwrap(), net("192.168.0.0/24"));
        assert_eq!(naive.acquire_network(&req).unwrap(), net("192.168.1.0/24"));
        assert!(matches!(
            naive.acquire_network(&req),
            Err(Error::PoolExhausted { .. })
        ));
        assert!(naive.release_network(net("192.168.0.0/24")).unwrap());
        assert!(!naive.release_network(net("192.168.0.0/24")).unwrap());
        assert!(naive.is_network_available(net("192.168.0.0/24")));
        assert_eq!(naive.acquire_network(&req).unwrap(), net("192.168.0.0/24"));
    }

    #[test]
    fn same_rules_as_the_tree() {
        let mut naive = LinearAllocator::with_default_pools();
        let reserve = |s: &str| NetworkRequest::new(net(s)).immutable().shared();
        assert_eq!(
            naive.acquire_network(&reserve("10.0.0.0/16")).unwrap(),
            net("10.0.0.0/16")
        );
        assert_eq!(
            naive.acquire_network(&reserve("10.0.0.0/16")).unwrap(),
            net("10.0.0.0/16")
        );
        assert_eq!(
            naive.acquire_network(&reserve("100.64.0.0/10")).unwrap(),
            net("100.64.0.0/10")
        );
        assert!(matches!(
            naive.acquire_network(&NetworkRequest::new(net("100.64.0.0/10")).immutable()),
            Err(Error::OutsidePools(_))
        ));
        assert!(matches!(
            naive.acquire_network(&NetworkRequest::new(net("10.0.1.0/24")).immutable()),
            Err(Error::Unavailable { .. })
        ));
        assert_eq!(
            naive
                .acquire_network(&NetworkRequest::new(net("10.0.0.0/16")))
                .unwrap(),
            net("10.1.0.0/16")
        );
        assert_eq!(naive.networks(), [net("10.0.0.0/16"), net("10.1.0.0/16")]);
        assert!(naive.release_network(net("10.0.0.0/16")).unwrap());
        assert!(naive.release_network(net("10.0.0.0/16")).unwrap());
        assert!(!naive.release_network(net("10.0.0.0/16")).unwrap());
        assert!(matches!(
            naive.acquire_network(&NetworkRequest::new(net("fd00::/64"))),
            Err(Error::FamilyMismatch { .. })
        ));
    }
}
