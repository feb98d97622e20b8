//! Property tests of the allocation core and of the remapping.
//!
//! The allocator runs against a simple model (a list of live acquisitions) with small pools,
//! so that conflicts, reservations around and over the pools, and exhaustion are frequent.
// Test code: helpers outside `#[test]` functions unwrap fixed, valid inputs.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use liqo_ipam::{
    Error,
    core::{Ipam, NetworkRequest},
    naive::LinearAllocator,
    remap::Mapping,
};
use proptest::prelude::*;

const POOLS: [&str; 3] = ["10.0.0.0/22", "10.0.8.0/24", "fd00::/120"];

fn pools() -> Vec<IpNetwork> {
    POOLS.iter().map(|s| s.parse().unwrap()).collect()
}

fn v4(base: u32, len: u8) -> IpNetwork {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(base & mask), len).unwrap())
}

fn v6(base: u128, len: u8) -> IpNetwork {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    IpNetwork::V6(Ipv6Network::new(Ipv6Addr::from(base & mask), len).unwrap())
}

fn value(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn build(is_v4: bool, base: u128, len: u8) -> IpNetwork {
    if is_v4 {
        v4(base as u32, len)
    } else {
        v6(base, len)
    }
}

fn address(is_v4: bool, value: u128) -> IpAddr {
    if is_v4 {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

const TEN: u32 = 10 << 24;
const FD00: u128 = 0xfd00 << 112;

/// CIDRs in and around the pools: 10.0.0.0/20 holds both IPv4 pools and space outside them,
/// fd00::/118 holds the IPv6 pool and space outside it. Short lengths cover whole pools.
fn cidr() -> impl Strategy<Value = IpNetwork> {
    prop_oneof![
        3 => (0u32..4096, 20u8..=28).prop_map(|(off, len)| v4(TEN + off, len)),
        1 => (0u128..1024, 116u8..=126).prop_map(|(off, len)| v6(FD00 + off, len)),
    ]
}

fn request() -> impl Strategy<Value = NetworkRequest> {
    (cidr(), any::<bool>(), any::<bool>(), 0u32..=5).prop_map(
        |(cidr, immutable, exclusive, pre)| {
            let mut req = NetworkRequest::new(cidr).pre_allocated(pre);
            if immutable {
                req = req.immutable();
            }
            if !exclusive {
                req = req.shared();
            }
            req
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    Acquire(NetworkRequest),
    /// Release a live acquisition (index modulo the number of live ones).
    Release(usize),
    /// Release whatever CIDR (often not allocated).
    ReleaseAny(IpNetwork),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => request().prop_map(Op::Acquire),
        2 => any::<usize>().prop_map(Op::Release),
        1 => cidr().prop_map(Op::ReleaseAny),
    ]
}

fn contains(outer: IpNetwork, inner: IpNetwork) -> bool {
    outer.prefix() <= inner.prefix() && outer.contains(inner.ip())
}

fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    contains(a, b) || contains(b, a)
}

fn size(net: IpNetwork) -> u128 {
    let host = if net.is_ipv4() { 32 } else { 128 } - u32::from(net.prefix());
    1u128 << host
}

#[derive(Debug, Clone, Copy)]
struct Live {
    cidr: IpNetwork,
    exclusive: bool,
    /// Whether the allocator tracks it (it lies in or over a pool).
    tracked: bool,
    mutable: bool,
}

#[derive(Default)]
struct Model {
    live: Vec<Live>,
}

impl Model {
    fn tracked(&self) -> impl Iterator<Item = &Live> {
        self.live.iter().filter(|l| l.tracked)
    }

    fn networks(&self) -> Vec<IpNetwork> {
        let set: BTreeSet<IpNetwork> = self.tracked().map(|l| l.cidr).collect();
        set.into_iter().collect()
    }

    /// Whether `cidr` is free for an exclusive acquisition.
    fn available(&self, cidr: IpNetwork) -> bool {
        pools().iter().any(|p| contains(*p, cidr))
            && !self.tracked().any(|l| overlaps(l.cidr, cidr))
    }

    /// Whether some `/len` of `cidr`'s family is free in the pools, by brute force.
    fn any_free(&self, cidr: IpNetwork) -> bool {
        pools()
            .into_iter()
            .filter(|p| p.is_ipv4() == cidr.is_ipv4() && p.prefix() <= cidr.prefix())
            .any(|p| {
                let step = size(cidr);
                (0..size(p) / step).any(|i| {
                    self.available(build(p.is_ipv4(), value(p.ip()) + i * step, cidr.prefix()))
                })
            })
    }

    fn remove_one(&mut self, cidr: IpNetwork) -> Option<Live> {
        let i = self.live.iter().position(|l| l.cidr == cidr)?;
        Some(self.live.remove(i))
    }
}

/// Applies `op` to the allocator and checks it against the model.
fn step(ipam: &mut Ipam, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let pools = pools();
    match op {
        Op::Acquire(req) => {
            let before = ipam.networks();
            let was_available = ipam.is_network_available(req.cidr);
            prop_assert_eq!(
                was_available,
                model.available(req.cidr),
                "availability of {}",
                req.cidr
            );
            let in_pool = pools.iter().any(|p| contains(*p, req.cidr));
            let touches_pools = pools.iter().any(|p| overlaps(*p, req.cidr));
            match ipam.acquire_network(req) {
                Ok(got) => {
                    prop_assert!(u128::from(req.pre_allocated) <= size(req.cidr));
                    if req.immutable {
                        prop_assert_eq!(got, req.cidr);
                        prop_assert!(in_pool || !req.exclusive);
                        model.live.push(Live {
                            cidr: got,
                            exclusive: req.exclusive,
                            tracked: touches_pools,
                            mutable: false,
                        });
                    } else {
                        prop_assert_eq!(got.prefix(), req.cidr.prefix());
                        prop_assert!(model.available(got), "{} was not free", got);
                        if was_available {
                            prop_assert_eq!(got, req.cidr, "the preferred cidr was free");
                        }
                        model.live.push(Live {
                            cidr: got,
                            exclusive: true,
                            tracked: true,
                            mutable: true,
                        });
                    }
                    // Pre-allocated addresses are reserved in tracked networks.
                    if in_pool || !req.immutable {
                        for i in 0..req.pre_allocated {
                            let addr = address(got.is_ipv4(), value(got.ip()) + u128::from(i));
                            prop_assert!(
                                ipam.is_ip_allocated(got, addr),
                                "{} not pre-allocated",
                                addr
                            );
                        }
                    }
                }
                Err(err) => {
                    prop_assert_eq!(
                        ipam.networks(),
                        before,
                        "a failed acquisition changed the state"
                    );
                    if u128::from(req.pre_allocated) > size(req.cidr) {
                        prop_assert!(matches!(err, Error::PreAllocatedTooLarge { .. }), "{}", err);
                    } else if req.immutable && req.exclusive {
                        if in_pool {
                            prop_assert!(matches!(err, Error::Unavailable { .. }), "{}", err);
                            prop_assert!(
                                model.tracked().any(|l| overlaps(l.cidr, req.cidr)),
                                "{}",
                                err
                            );
                        } else {
                            prop_assert!(matches!(err, Error::OutsidePools(_)), "{}", err);
                        }
                    } else if req.immutable {
                        prop_assert!(matches!(err, Error::Unavailable { .. }), "{}", err);
                        prop_assert!(
                            model
                                .tracked()
                                .any(|l| l.exclusive && overlaps(l.cidr, req.cidr)),
                            "{}",
                            err
                        );
                    } else {
                        prop_assert!(matches!(err, Error::PoolExhausted { .. }), "{}", err);
                        prop_assert!(
                            !model.any_free(req.cidr),
                            "{} but a /{} is free",
                            err,
                            req.cidr.prefix()
                        );
                    }
                }
            }
        }
        Op::Release(i) => {
            if !model.live.is_empty() {
                let cidr = model.live[i % model.live.len()].cidr;
                let live = model.remove_one(cidr);
                let released = ipam.release_network(cidr).unwrap();
                prop_assert_eq!(released, live.is_some_and(|l| l.tracked));
            }
        }
        Op::ReleaseAny(cidr) => {
            let tracked = model.tracked().any(|l| l.cidr == *cidr);
            prop_assert_eq!(ipam.release_network(*cidr).unwrap(), tracked);
            if tracked {
                model.remove_one(*cidr);
            }
        }
    }
    check_invariants(ipam, model)
}

fn check_invariants(ipam: &Ipam, model: &Model) -> Result<(), TestCaseError> {
    let pools = pools();
    let tracked: Vec<&Live> = model.tracked().collect();
    for (i, a) in tracked.iter().enumerate() {
        for b in &tracked[i + 1..] {
            if a.exclusive || b.exclusive {
                prop_assert!(
                    !overlaps(a.cidr, b.cidr),
                    "{} and {} overlap",
                    a.cidr,
                    b.cidr
                );
            }
        }
        if a.mutable {
            prop_assert!(
                pools.iter().any(|p| contains(*p, a.cidr)),
                "{} is outside the pools",
                a.cidr
            );
        }
    }
    // Untracked reservations are disjoint from the pools, hence from every allocation.
    for l in model.live.iter().filter(|l| !l.tracked) {
        prop_assert!(!pools.iter().any(|p| overlaps(*p, l.cidr)));
    }
    prop_assert_eq!(ipam.networks(), model.networks());
    Ok(())
}

fn replay(ipam: &mut Ipam, ops: &[Op]) -> Vec<Result<IpNetwork, String>> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Acquire(req) => Some(ipam.acquire_network(req).map_err(|e| e.to_string())),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of acquisitions and releases keeps exclusive allocations disjoint from
    /// everything, keeps mutable ones inside the pools and clear of reservations, fails only
    /// for a reason that holds, and leaves no trace once everything is released.
    #[test]
    fn acquisitions_never_overlap_and_space_is_reused(ops in prop::collection::vec(op(), 1..40)) {
        let mut ipam = Ipam::new(pools()).unwrap();
        let mut model = Model::default();
        for op in &ops {
            step(&mut ipam, &mut model, op)?;
        }
        // Release everything that is still held.
        for live in std::mem::take(&mut model.live) {
            prop_assert_eq!(ipam.release_network(live.cidr).unwrap(), live.tracked);
        }
        prop_assert!(ipam.networks().is_empty());
        for pool in pools() {
            prop_assert!(ipam.is_network_available(pool));
        }
        // The same requests get the same answers as on a fresh allocator.
        let mut fresh = Ipam::new(pools()).unwrap();
        prop_assert_eq!(replay(&mut ipam, &ops), replay(&mut fresh, &ops));
    }

    /// A pool filled up with mutable requests around some reservations is really full, and
    /// released it fills up again the same way, or is taken whole.
    #[test]
    fn a_full_pool_frees_up(
        len in 22u8..=27,
        reserved in prop::collection::vec((0u32..1024, 23u8..=30, any::<bool>()), 0..6),
    ) {
        let pool: IpNetwork = "10.0.0.0/22".parse().unwrap();
        let mut ipam = Ipam::new([pool]).unwrap();
        let mut held = Vec::new();
        for (off, rlen, exclusive) in reserved {
            let mut req = NetworkRequest::new(v4(TEN + off, rlen)).immutable();
            if !exclusive {
                req = req.shared();
            }
            if let Ok(n) = ipam.acquire_network(&req) {
                held.push(n);
            }
        }
        let reservations = ipam.networks();
        let distinct: Vec<IpNetwork> = held.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        prop_assert_eq!(&reservations, &distinct);
        let fill = |ipam: &mut Ipam| {
            let mut got = Vec::new();
            loop {
                match ipam.acquire_network(&NetworkRequest::new(v4(TEN, len))) {
                    Ok(n) => got.push(n),
                    Err(Error::PoolExhausted { .. }) => break got,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        };
        let first = fill(&mut ipam);
        // Full: every /len candidate overlaps something.
        let step = 1u32 << (32 - u32::from(len));
        for i in 0..(1u32 << (u32::from(len) - 22)) {
            prop_assert!(!ipam.is_network_available(v4(TEN + i * step, len)));
        }
        for n in &first {
            prop_assert!(ipam.release_network(*n).unwrap());
        }
        prop_assert_eq!(ipam.networks(), reservations.clone());
        let second = fill(&mut ipam);
        prop_assert_eq!(&first, &second);
        for n in second.iter().chain(&held) {
            prop_assert!(ipam.release_network(*n).unwrap());
        }
        prop_assert_eq!(ipam.acquire_network(&NetworkRequest::new(pool)).unwrap(), pool);
    }

    /// Packed from the start of the pools, the tree and the naive allocator agree.
    #[test]
    fn tree_and_naive_agree_when_packing(lens in prop::collection::vec(18u8..=30, 1..60)) {
        let pools: Vec<IpNetwork> = vec!["10.0.0.0/16".parse().unwrap(), "192.168.0.0/20".parse().unwrap()];
        let mut tree = Ipam::new(pools.clone()).unwrap();
        let mut naive = LinearAllocator::new(pools).unwrap();
        for len in lens {
            let req = NetworkRequest::new(v4(TEN, len));
            let t = tree.acquire_network(&req).map_err(|e| e.to_string());
            let n = naive.acquire_network(&req).map_err(|e| e.to_string());
            prop_assert_eq!(t, n);
        }
        prop_assert_eq!(tree.networks(), naive.networks());
    }

    /// Addresses are never handed out twice, all of them are handed out before the network is
    /// full, and released ones come back.
    #[test]
    fn ips_are_unique_and_reused(
        len in 26u8..=30,
        ops in prop::collection::vec((0u8..3, 0u32..64), 1..200),
    ) {
        let mut ipam = Ipam::with_default_pools();
        let net = ipam.acquire_network(&NetworkRequest::new(v4(TEN, len))).unwrap();
        let size = 1u32 << (32 - u32::from(len));
        let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(TEN + (i % size)));
        let mut model = BTreeSet::new();
        for (kind, i) in ops {
            match kind {
                0 => match ipam.acquire_ip(net, None) {
                    Ok(a) => prop_assert!(model.insert(a), "{} handed out twice", a),
                    Err(Error::NetworkFull(_)) => prop_assert_eq!(model.len() as u32, size),
                    Err(e) => panic!("unexpected error: {e}"),
                },
                1 => {
                    let hinted = ipam.acquire_ip(net, Some(addr(i)));
                    prop_assert_eq!(hinted.is_ok(), model.insert(addr(i)));
                }
                _ => prop_assert_eq!(ipam.release_ip(net, addr(i)).unwrap(), model.remove(&addr(i))),
            }
            prop_assert_eq!(ipam.ips(net), model.iter().copied().collect::<Vec<_>>());
        }
    }

    /// Translating into the remapped CIDR and back gives the original address, for every
    /// address and prefix of the real CIDR, IPv4 and IPv6.
    #[test]
    fn remapping_round_trips(
        v6_family in any::<bool>(),
        real in any::<u128>(),
        remapped in any::<u128>(),
        host in any::<u128>(),
        len_seed in any::<u8>(),
        sub_seed in any::<u8>(),
    ) {
        let is_v4 = !v6_family;
        let bits: u8 = if is_v4 { 32 } else { 128 };
        let len = len_seed % (bits + 1);
        let real = build(is_v4, real, len);
        let remapped = build(is_v4, remapped, len);
        let m = Mapping::new(real, remapped).unwrap();
        let host_mask = if bits - len >= 128 { u128::MAX } else { (1u128 << (bits - len)) - 1 };
        let a_value = value(real.ip()) | (host & host_mask);
        let a = address(is_v4, a_value);
        let there = m.to_remapped(a).unwrap();
        prop_assert!(remapped.contains(there));
        prop_assert_eq!(m.to_real(there).unwrap(), a);
        // A prefix inside the real CIDR.
        let sub_len = len + sub_seed % (bits - len + 1);
        let sub = build(is_v4, a_value, sub_len);
        let sub_there = m.prefix_to_remapped(sub).unwrap();
        prop_assert_eq!(sub_there.prefix(), sub_len);
        prop_assert!(contains(remapped, sub_there));
        prop_assert_eq!(m.prefix_to_real(sub_there).unwrap(), sub);
    }
}
