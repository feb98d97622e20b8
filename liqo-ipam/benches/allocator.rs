//! Allocator and remapping benchmarks.
//!
//! With 10,000 /24 networks allocated in the default pools, measures one more acquisition (and
//! its release) and availability checks on the prefix tree ([`Ipam`]) and on the naive
//! linear-scan baseline ([`LinearAllocator`]) in the same run, then address translations.
//!
//! Besides criterion's report, prints one JSON line per measurement to stdout, e.g.
//! `{"bench":"ipam_acquire_network_10k","impl":"tree","value":123456.7,"unit":"ops/s"}`,
//! computed from the iterations criterion timed (warm-up included).
//!
//! Run with `cargo bench -p liqo-ipam --bench allocator`.

use std::{
    cell::Cell,
    error::Error,
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use ipnetwork::IpNetwork;
use liqo_ipam::{
    core::{Ipam, NetworkRequest},
    naive::LinearAllocator,
    remap::{Mapping, RemoteCidrs},
};

const NETWORKS: usize = 10_000;

/// Runs `op` under criterion as `bench/imp` and prints its throughput as a JSON line.
fn measure(group: &mut BenchmarkGroup<'_, WallTime>, bench: &str, imp: &str, mut op: impl FnMut()) {
    let iterations = Cell::new(0u64);
    let elapsed = Cell::new(Duration::ZERO);
    group.bench_function(imp, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                op();
            }
            let took = start.elapsed();
            iterations.set(iterations.get() + iters);
            elapsed.set(elapsed.get() + took);
            took
        });
    });
    let secs = elapsed.get().as_secs_f64();
    let ops = if secs > 0.0 {
        iterations.get() as f64 / secs
    } else {
        0.0
    };
    println!(r#"{{"bench":"{bench}","impl":"{imp}","value":{ops:.1},"unit":"ops/s"}}"#);
}

fn allocators() -> Result<(Ipam, LinearAllocator), Box<dyn Error>> {
    let started = Instant::now();
    let mut tree = Ipam::with_default_pools();
    let req = NetworkRequest::new("10.0.0.0/24".parse()?);
    for _ in 0..NETWORKS {
        tree.acquire_network(&req)?;
    }
    let tree_setup = started.elapsed();
    // The naive allocator gets the same networks as exact (immutable) requests: a linear check
    // each, instead of a search each, so that its setup does not dominate the run.
    let started = Instant::now();
    let mut naive = LinearAllocator::with_default_pools();
    for net in tree.networks() {
        naive.acquire_network(&NetworkRequest::new(net).immutable())?;
    }
    eprintln!(
        "setup: {NETWORKS} /24 networks in {:.1?} (tree), {:.1?} (naive, exact requests)",
        tree_setup,
        started.elapsed()
    );
    // Both must be in the same state and hand out the same next network.
    let (a, b) = (tree.acquire_network(&req)?, naive.acquire_network(&req)?);
    if a != b || tree.networks() != naive.networks() {
        return Err(format!("the allocators disagree: {a} vs {b}").into());
    }
    tree.release_network(a)?;
    naive.release_network(b)?;
    Ok((tree, naive))
}

fn bench_networks(c: &mut Criterion) -> Result<(), Box<dyn Error>> {
    let (mut tree, mut naive) = allocators()?;
    // Every request collides with an allocated network and is remapped to the first free /24.
    let req = NetworkRequest::new("10.0.0.0/24".parse()?);

    let mut group = c.benchmark_group("ipam_acquire_network_10k");
    // The naive search takes about a tenth of a second: a few flat samples of one iteration.
    group
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(2));
    measure(&mut group, "ipam_acquire_network_10k", "tree", || {
        if let Ok(net) = tree.acquire_network(black_box(&req)) {
            let _ = black_box(tree.release_network(net));
        }
    });
    measure(&mut group, "ipam_acquire_network_10k", "naive", || {
        if let Ok(net) = naive.acquire_network(black_box(&req)) {
            let _ = black_box(naive.release_network(net));
        }
    });
    group.finish();

    // A taken network, the first free one and a free one far from the allocations.
    let queries: Vec<IpNetwork> = ["10.20.0.0/24", "10.39.16.0/24", "10.200.0.0/24"]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let mut group = c.benchmark_group("ipam_is_network_available_10k");
    let mut i = 0usize;
    measure(&mut group, "ipam_is_network_available_10k", "tree", || {
        i = (i + 1) % queries.len();
        black_box(tree.is_network_available(black_box(queries[i])));
    });
    let mut i = 0usize;
    measure(&mut group, "ipam_is_network_available_10k", "naive", || {
        i = (i + 1) % queries.len();
        black_box(naive.is_network_available(black_box(queries[i])));
    });
    group.finish();
    Ok(())
}

fn bench_remap(c: &mut Criterion) -> Result<(), Box<dyn Error>> {
    let mapping = Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?;
    let remote = RemoteCidrs {
        pod: vec![
            mapping,
            Mapping::new("fd00::/64".parse()?, "fd00:0:0:1::/64".parse()?)?,
        ],
        external: vec![Mapping::new(
            "10.70.0.0/16".parse()?,
            "10.71.0.0/16".parse()?,
        )?],
    };
    let addrs: Vec<IpAddr> = (0..1024u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from((10 << 24) | (i * 61))))
        .collect();
    let external: Vec<IpAddr> = (0..1024u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from((10 << 24) | (70 << 16) | (i * 61))))
        .collect();
    let strings: Vec<String> = addrs.iter().map(ToString::to_string).collect();

    let mut group = c.benchmark_group("remap_to_remapped");
    let mut i = 0usize;
    measure(&mut group, "remap_to_remapped", "mapping", || {
        i = (i + 1) % addrs.len();
        let _ = black_box(mapping.to_remapped(black_box(addrs[i])));
    });
    // Through a peer's CIDRs, for an external address (after the pod mappings are tried).
    let mut i = 0usize;
    measure(&mut group, "remap_to_remapped", "remote_cidrs", || {
        i = (i + 1) % external.len();
        black_box(remote.to_remapped(black_box(external[i])));
    });
    // Baseline: parse the address and both CIDRs on every call, as upstream's string-based
    // MapAddressWithNetworkConfiguration does.
    let mut i = 0usize;
    measure(&mut group, "remap_to_remapped", "parse_per_call", || {
        i = (i + 1) % strings.len();
        black_box(parse_and_remap(
            black_box(&strings[i]),
            "10.0.0.0/16",
            "10.1.0.0/16",
        ));
    });
    group.finish();
    Ok(())
}

fn parse_and_remap(addr: &str, real: &str, remapped: &str) -> Option<IpAddr> {
    let addr: IpAddr = addr.parse().ok()?;
    let real: IpNetwork = real.parse().ok()?;
    let remapped: IpNetwork = remapped.parse().ok()?;
    match (addr, real.mask(), remapped.network()) {
        (IpAddr::V4(a), IpAddr::V4(mask), IpAddr::V4(net)) if real.contains(addr) => {
            Some(IpAddr::V4(Ipv4Addr::from(
                u32::from(net) | (u32::from(a) & !u32::from(mask)),
            )))
        }
        _ => None,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench_networks(&mut c)?;
    bench_remap(&mut c)?;
    c.final_summary();
    Ok(())
}
