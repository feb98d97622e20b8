//! Pod-to-pod throughput and round trip through the tunnel backends, beside plain veth, in
//! the same run (`cargo bench -p liqo-net --bench tunnel`, or `make bench-net`).
//!
//! Topology, one set of network namespaces per variant:
//!
//! ```text
//! [pod-a] 10.0.1.2 ── 10.0.1.1 [gw-a] 192.168.94.1 ══ <tunnel over veth> ══ 192.168.94.2 [gw-b] 10.0.2.1 ── 10.0.2.2 [pod-b]
//! ```
//!
//! Variants: `veth` (baseline: the gateways route over the plain veth, no tunnel),
//! `wireguard-userspace` (WireGuardBackend, embedded boringtun), `vxlan` (VxlanBackend), and
//! `wireguard-kernel` where the module is loaded. Each measures one iperf3 TCP stream from
//! pod-a to pod-b (`LIQO_BENCH_SECONDS`, default 10 s) and the average of 20 pings.
//!
//! Prints one JSON line per figure: `{"bench": ..., "value": ..., "unit": ...}`. Needs root,
//! `ip`, `ping`, `iperf3` and `/dev/net/tun`; prints why and exits 0 without them.
//!
//! Knobs for experiments: `LIQO_BENCH_VARIANTS` (comma-separated subset of the variants),
//! `LIQO_BENCH_WG_MTU` (MTU of the WireGuard interface, default 1340 as shipped),
//! `LIQO_BENCH_SOCKBUF` (bytes: default and maximum socket buffers in the gateways).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking
#![allow(missing_docs)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use liqo_net::TunnelBackend;
use liqo_net::tunnel::{InterfaceSpec, PeerSpec};
use liqo_net::vxlan::VxlanBackend;
use liqo_net::wireguard::{Implementation, WireGuardBackend, kernel_module_available};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Netns, run, succeeds};

const TUNNEL_IF: &str = "lnab-tun";

/// Runs `f` on a fresh thread that entered the network namespace `ns` first, with a
/// current-thread runtime (whose blocking threads start in the namespace too).
#[allow(unsafe_code)]
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static,
) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap();
        // SAFETY: `setns` takes a valid open descriptor (kept open by `file` for the call)
        // and a flag; it only moves this new thread, which owns no namespace-bound state yet.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        f(&rt)
    })
    .join()
    .expect("namespace thread panicked")
}

struct Topology {
    pod_a: Netns,
    gw_a: Netns,
    gw_b: Netns,
    pod_b: Netns,
}

impl Topology {
    fn new(tag: &str) -> Self {
        let t = Self {
            pod_a: Netns::new(&format!("b{tag}-pa")),
            gw_a: Netns::new(&format!("b{tag}-ga")),
            gw_b: Netns::new(&format!("b{tag}-gb")),
            pod_b: Netns::new(&format!("b{tag}-pb")),
        };
        for (pod, gw, subnet) in [(&t.pod_a, &t.gw_a, "1"), (&t.pod_b, &t.gw_b, "2")] {
            pod.ip(&[
                "link", "add", "eth0", "type", "veth", "peer", "name", "pod0", "netns", &gw.name,
            ]);
            pod.ip(&["addr", "add", &format!("10.0.{subnet}.2/24"), "dev", "eth0"]);
            pod.ip(&["link", "set", "eth0", "up"]);
            pod.ip(&[
                "route",
                "add",
                "default",
                "via",
                &format!("10.0.{subnet}.1"),
            ]);
            gw.ip(&["addr", "add", &format!("10.0.{subnet}.1/24"), "dev", "pod0"]);
            gw.ip(&["link", "set", "pod0", "up"]);
            run(gw.cmd("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]));
        }
        if let Ok(bytes) = std::env::var("LIQO_BENCH_SOCKBUF") {
            for gw in [&t.gw_a, &t.gw_b] {
                for key in ["rmem_default", "wmem_default", "rmem_max", "wmem_max"] {
                    run(gw
                        .cmd("sysctl")
                        .args(["-qw", &format!("net.core.{key}={bytes}")]));
                }
            }
        }
        t.gw_a.ip(&[
            "link",
            "add",
            "u0",
            "type",
            "veth",
            "peer",
            "name",
            "u0",
            "netns",
            &t.gw_b.name,
        ]);
        t.gw_a.ip(&["addr", "add", "192.168.94.1/24", "dev", "u0"]);
        t.gw_b.ip(&["addr", "add", "192.168.94.2/24", "dev", "u0"]);
        t.gw_a.ip(&["link", "set", "u0", "up"]);
        t.gw_b.ip(&["link", "set", "u0", "up"]);
        t
    }

    /// Routes each pod subnet to the other gateway via `next_a` (from gw-a) and `next_b`.
    fn route(&self, next_a: &str, next_b: &str) {
        self.gw_a
            .ip(&["route", "replace", "10.0.2.0/24", "via", next_a]);
        self.gw_b
            .ip(&["route", "replace", "10.0.1.0/24", "via", next_b]);
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One iperf3 TCP stream pod-a -> pod-b; Gbit/s received.
fn iperf(t: &Topology, seconds: u64) -> f64 {
    let _server = Server(
        t.pod_b
            .cmd("iperf3")
            .args(["-s", "-1", "-B", "10.0.2.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut last = String::new();
    for _ in 0..50 {
        let out = t
            .pod_a
            .cmd("iperf3")
            .args(["-c", "10.0.2.2", "-t", &seconds.to_string(), "-J"])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(bps) = json
            .pointer("/end/sum_received/bits_per_second")
            .and_then(serde_json::Value::as_f64)
        {
            return bps / 1e9;
        }
        last = json
            .get("error")
            .map(ToString::to_string)
            .unwrap_or_default();
        // The server is starting; this is synchronous code, no runtime to block.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("iperf3 never measured: {last}");
}

/// Average RTT in ms of 20 pings pod-a -> pod-b.
fn ping_avg(t: &Topology) -> f64 {
    let out = run(t
        .pod_a
        .cmd("ping")
        .args(["-n", "-q", "-c", "20", "-i", "0.05", "10.0.2.2"]));
    // rtt min/avg/max/mdev = 0.031/0.045/0.090/0.012 ms
    let stats = out.rsplit('=').next().unwrap().trim();
    stats.split('/').nth(1).unwrap().parse().unwrap()
}

fn report(variant: &str, t: &Topology, seconds: u64) {
    // Warm up (ARP, handshakes) and make sure the path works before measuring.
    assert!(
        (0..20).any(|_| succeeds(t.pod_a.cmd("ping").args(["-c", "1", "-W", "1", "10.0.2.2"]))),
        "{variant}: no path pod-a -> pod-b"
    );
    let rtt = ping_avg(t);
    let gbps = iperf(t, seconds);
    println!(
        r#"{{"bench":"tunnel/{variant}/tcp_single_stream","value":{gbps:.3},"unit":"Gbit/s"}}"#
    );
    println!(r#"{{"bench":"tunnel/{variant}/ping_rtt_avg20","value":{rtt:.3},"unit":"ms"}}"#);
}

fn bench_veth(seconds: u64) {
    let t = Topology::new("v");
    t.route("192.168.94.2", "192.168.94.1");
    report("veth", &t, seconds);
}

fn bench_vxlan(seconds: u64) {
    let t = Topology::new("x");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = VxlanBackend::new(42).unwrap().in_netns(&t.gw_a.name);
    let b = VxlanBackend::new(42).unwrap().in_netns(&t.gw_b.name);
    rt.block_on(async {
        let (ka, kb) = (
            a.generate_keys().await.unwrap(),
            b.generate_keys().await.unwrap(),
        );
        for (backend, addr, keys) in [(&a, "169.254.18.1/30", &ka), (&b, "169.254.18.2/30", &kb)] {
            let spec = InterfaceSpec::new(addr.parse().unwrap(), keys.private.clone())
                .with_name(TUNNEL_IF)
                .with_listen_port(0)
                .with_mtu(1450);
            backend.ensure_interface(&spec).await.unwrap();
        }
        a.upsert_peer(
            &PeerSpec::new(kb.public).with_endpoint("192.168.94.2:4789".parse().unwrap()),
        )
        .await
        .unwrap();
        b.upsert_peer(
            &PeerSpec::new(ka.public).with_endpoint("192.168.94.1:4789".parse().unwrap()),
        )
        .await
        .unwrap();
    });
    t.route("169.254.18.2", "169.254.18.1");
    report("vxlan", &t, seconds);
    rt.block_on(async {
        a.teardown().await.unwrap();
        b.teardown().await.unwrap();
    });
}

fn bench_wireguard(implementation: Implementation, seconds: u64) {
    let variant = format!("wireguard-{implementation}");
    let mtu: u32 = std::env::var("LIQO_BENCH_WG_MTU")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(liqo_net::tunnel::DEFAULT_MTU);
    let t = Topology::new(if implementation == Implementation::Kernel {
        "k"
    } else {
        "w"
    });
    let a = Arc::new(WireGuardBackend::new(implementation));
    let b = Arc::new(WireGuardBackend::new(implementation));
    let ka = in_netns(&t.gw_a.name, {
        let a = a.clone();
        move |rt| rt.block_on(a.generate_keys()).unwrap()
    });
    let kb = in_netns(&t.gw_b.name, {
        let b = b.clone();
        move |rt| rt.block_on(b.generate_keys()).unwrap()
    });
    // Interface names are global for the userspace sockets: unique per side.
    for (backend, ns, name, addr, keys, peer, endpoint) in [
        (
            &a,
            &t.gw_a,
            "lnab-wga",
            "169.254.18.1/30",
            &ka,
            kb.public,
            "192.168.94.2:51840",
        ),
        (
            &b,
            &t.gw_b,
            "lnab-wgb",
            "169.254.18.2/30",
            &kb,
            ka.public,
            "192.168.94.1:51840",
        ),
    ] {
        let spec = InterfaceSpec::new(addr.parse().unwrap(), keys.private.clone())
            .with_name(name)
            .with_mtu(mtu);
        let peer = PeerSpec::new(peer).with_endpoint(endpoint.parse().unwrap());
        let backend = backend.clone();
        in_netns(&ns.name, move |rt| {
            rt.block_on(async {
                backend.ensure_interface(&spec).await.unwrap();
                backend.upsert_peer(&peer).await.unwrap();
            });
        });
    }
    t.route("169.254.18.2", "169.254.18.1");
    report(&variant, &t, seconds);
    for (backend, ns) in [(a, &t.gw_a), (b, &t.gw_b)] {
        in_netns(&ns.name, move |rt| rt.block_on(backend.teardown()).unwrap());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let missing: Vec<&str> = [
        ("root", support_is_root()),
        ("ip", succeeds(Command::new("ip").arg("-V"))),
        ("ping", succeeds(Command::new("ping").arg("-V"))),
        ("iperf3", succeeds(Command::new("iperf3").arg("--version"))),
        (
            "/dev/net/tun",
            std::path::Path::new("/dev/net/tun").exists(),
        ),
    ]
    .into_iter()
    .filter_map(|(what, ok)| (!ok).then_some(what))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "tunnel bench skipped: needs {} (make bench-net installs iperf3)",
            missing.join(", ")
        );
        return;
    }
    let seconds: u64 = std::env::var("LIQO_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let variants = std::env::var("LIQO_BENCH_VARIANTS")
        .unwrap_or_else(|_| "veth,wireguard-userspace,wireguard-kernel,vxlan".to_owned());
    for variant in variants.split(',').map(str::trim) {
        match variant {
            "veth" => bench_veth(seconds),
            "vxlan" => bench_vxlan(seconds),
            "wireguard-userspace" => bench_wireguard(Implementation::Userspace, seconds),
            "wireguard-kernel" if kernel_module_available() => {
                bench_wireguard(Implementation::Kernel, seconds);
            }
            "wireguard-kernel" => eprintln!("wireguard-kernel skipped: no wireguard kernel module"),
            other => panic!("unknown variant {other:?}"),
        }
    }
}

/// Root, from `/proc/self/status` (effective uid).
fn support_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
