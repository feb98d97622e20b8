//! Data-plane test of the `liqo-fabric` binary: run in a "node" namespace, it gives the
//! "pod" behind the node a path to an address behind the "gateway" (whose end of the overlay
//! is set up with the library, as the gateway does), repairs what is deleted, survives
//! kill -9 and a restart, and removes everything on SIGTERM.
//!
//! ```text
//! [pod] eth0 10.0.1.2 ── pod0 10.0.1.1 [node] u0 192.168.93.1 ── u0 192.168.93.2 [gateway] lo 10.71.0.5
//!                                     liqo.<n> 10.80.0.2 ═══VXLAN═══ liqo.<g> 10.80.0.1
//! ```
//!
//! Needs root, `ip`, `ping`, `bash` and `timeout`; skipped without them unless `CI` is set
//! (then it fails). It is a privileged test outside liqo-net: hack/test.sh must run
//! `cargo test -p liqo-fabric --test fabric_netns` in its data-plane phase. Manual cleanup:
//! `ip netns list | grep liqo-test-fb | cut -d' ' -f1 | xargs -rn1 ip netns del`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liqo_net::check::{CaseKind, CheckCase, Endpoint, NetnsProbe, run_checks};
use liqo_net::overlay::{Overlay, OverlayKind, OverlayLink, OverlaySpec};

#[path = "../../../liqo-net/tests/support/mod.rs"]
mod support;
use support::{Netns, requirements_met, succeeds};

const NODE_IF: &str = "liqo.00000000f1";

/// The fabric process, killed on drop if still running.
struct Fabric(Child);

impl Fabric {
    fn start(node: &Netns, log: &str) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = node
            .cmd(env!("CARGO_BIN_EXE_liqo-fabric"))
            .args([
                "--node-ip",
                "192.168.93.1",
                "--gateway-ip",
                "192.168.93.2",
                "--vni",
                "21",
                "--node-overlay-ip",
                "10.80.0.2",
                "--gateway-overlay-ip",
                "10.80.0.1",
                "--remote-cidr",
                "10.71.0.0/16",
                "--remote-cidr",
                "10.72.0.0/16",
                "--interface",
                NODE_IF,
                "--resync-interval",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self(child)
    }

    fn signal(&self, signal: &str) {
        assert!(succeeds(
            Command::new("kill").args([signal, &self.0.id().to_string()])
        ));
    }

    /// Waits for the process to exit and returns whether it succeeded.
    async fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "liqo-fabric did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn topology() -> (Netns, Netns, Netns) {
    let pod = Netns::new("fb-pod");
    let node = Netns::new("fb-node");
    let gw = Netns::new("fb-gw");
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "pod0", "netns", &node.name,
    ]);
    pod.ip(&["addr", "add", "10.0.1.2/24", "dev", "eth0"]);
    pod.ip(&["link", "set", "eth0", "up"]);
    pod.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    node.ip(&["addr", "add", "10.0.1.1/24", "dev", "pod0"]);
    node.ip(&["link", "set", "pod0", "up"]);
    node.ip(&[
        "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &gw.name,
    ]);
    node.ip(&["addr", "add", "192.168.93.1/24", "dev", "u0"]);
    node.ip(&["link", "set", "u0", "up"]);
    gw.ip(&["addr", "add", "192.168.93.2/24", "dev", "u0"]);
    gw.ip(&["link", "set", "u0", "up"]);
    gw.ip(&["addr", "add", "10.71.0.5/32", "dev", "lo"]);
    assert!(succeeds(
        node.cmd("sysctl").args(["-qw", "net.ipv4.ip_forward=1"])
    ));
    (pod, node, gw)
}

/// The pod's ICMP and TCP checks towards the address behind the gateway, until they pass
/// (at most ~20 s) or, with `expect_ok == false`, until they fail.
async fn wait_traffic(probe: &NetnsProbe, pod: &Netns, expect_ok: bool) {
    let case = CheckCase::new(
        CaseKind::PodToPod,
        Endpoint::new("pod", &pod.name),
        "behind-gateway",
        "10.71.0.5".parse().unwrap(),
        Some(8080),
    );
    let mut report = run_checks(probe, std::slice::from_ref(&case)).await;
    for _ in 0..40 {
        if report.all_ok() == expect_ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        report = run_checks(probe, std::slice::from_ref(&case)).await;
    }
    panic!("expected traffic ok={expect_ok}:\n{report}");
}

fn ifindex(ns: &Netns, link: &str) -> String {
    support::run(ns.cmd("cat").arg(format!("/sys/class/net/{link}/ifindex")))
}

fn liqo_rules(ns: &Netns) -> usize {
    ns.ip(&["rule", "show"])
        .lines()
        .filter(|l| l.contains(&format!("proto {}", liqo_net::overlay::RT_PROTOCOL)))
        .count()
}

#[tokio::test]
async fn fabric_agent_lifecycle() {
    if !requirements_met(
        "fabric_agent_lifecycle",
        &["ip", "ping", "python3", "bash", "timeout"],
        &[],
    ) {
        return;
    }
    let logs = std::env::temp_dir().join(format!("liqo-fabric-test-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let log = |name: &str| logs.join(name).to_string_lossy().into_owned();

    let (pod, node, gw) = topology();
    let gw_side = Overlay::new(OverlaySpec::gateway(
        &OverlayLink::new(
            OverlayKind::Vxlan,
            21,
            "192.168.93.1".parse().unwrap(),
            "192.168.93.2".parse().unwrap(),
            "10.80.0.2".parse().unwrap(),
            "10.80.0.1".parse().unwrap(),
        ),
        "liqo.00000000f2",
        vec!["10.0.1.0/24".parse().unwrap()],
    ))
    .unwrap()
    .in_netns(&gw.name);
    gw_side.ensure().await.unwrap();
    let _server = Fabric(
        gw.cmd("python3")
            .args(["-m", "http.server", "--bind", "10.71.0.5", "8080"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let probe = NetnsProbe::default();
    // No overlay, no path.
    wait_traffic(&probe, &pod, false).await;

    let mut fabric = Fabric::start(&node, &log("fabric-1.log"));
    wait_traffic(&probe, &pod, true).await;
    assert_eq!(liqo_rules(&node), 3, "{}", node.ip(&["rule", "show"]));

    // Deleted behind its back: repaired at the next resync.
    node.ip(&["link", "delete", "dev", NODE_IF]);
    wait_traffic(&probe, &pod, true).await;

    // kill -9: the kernel state stays, traffic keeps flowing ...
    fabric.signal("-KILL");
    assert!(!fabric.wait_exit().await);
    let index = ifindex(&node, NODE_IF);
    wait_traffic(&probe, &pod, true).await;
    // ... and a new agent adopts it (same link, no duplicate rules).
    let mut fabric = Fabric::start(&node, &log("fabric-2.log"));
    wait_traffic(&probe, &pod, true).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a couple of resyncs
    assert_eq!(
        ifindex(&node, NODE_IF),
        index,
        "the restarted agent re-created the link"
    );
    assert_eq!(liqo_rules(&node), 3, "{}", node.ip(&["rule", "show"]));

    // SIGTERM: everything it created is gone, and it exits successfully.
    fabric.signal("-TERM");
    assert!(fabric.wait_exit().await, "see {}", log("fabric-2.log"));
    assert!(!node.has_link(NODE_IF));
    assert_eq!(liqo_rules(&node), 0, "{}", node.ip(&["rule", "show"]));
    let main_routes = node.ip(&["route", "show", "table", "all"]);
    assert!(!main_routes.contains("10.71.0.0"), "{main_routes}");
    wait_traffic(&probe, &pod, false).await;
    let stderr = std::fs::read_to_string(log("fabric-2.log")).unwrap();
    assert!(stderr.contains("overlay removed"), "{stderr}");

    // Bad input is refused with a message saying what is wrong.
    let out = node
        .cmd(env!("CARGO_BIN_EXE_liqo-fabric"))
        .args([
            "--node-ip",
            "192.168.93.1",
            "--gateway-ip",
            "192.168.93.2",
            "--vni",
            "21",
            "--node-overlay-ip",
            "10.80.0.2",
            "--gateway-overlay-ip",
            "10.80.0.1",
            "--remote-cidr",
            "10.71.0.0/16",
            "--overlay",
            "gre",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected vxlan or geneve"), "{stderr}");
    gw_side.remove().await.unwrap();
    let _ = std::fs::remove_dir_all(&logs);
}
