//! Data-plane test of the network check (`liqo_net::check`) with the network-namespace
//! probe: two "clusters", each a node with a pod behind it, routed to each other; every real
//! pod is reachable (OK rows, ICMP and TCP, from pods and nodes), a pod that does not exist
//! gives FAIL rows, and a source that does not exist gives ERROR rows.
//!
//! ```text
//! [pod-a] 10.0.1.2 ── [node-a] 192.168.95.1 ── 192.168.95.2 [node-b] ── 10.0.2.2 [pod-b]
//! ```
//!
//! Needs root, `ip`, `ping`, `bash`, `timeout` and `python3`; skipped without them unless
//! `CI` is set (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::process::{Child, Stdio};
use std::time::Duration;

use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_net::check::{
    CaseKind, ClusterEndpoints, Endpoint, NetnsProbe, Outcome, PodEndpoint, check_peering,
};

mod support;
use support::{Netns, requirements_met, run, succeeds};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pod behind a node: veth, addresses, default route; and a TCP server on 8080.
fn pod_behind(pod: &Netns, node: &Netns, subnet: u8) -> KillOnDrop {
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "pod0", "netns", &node.name,
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
    node.ip(&["addr", "add", &format!("10.0.{subnet}.1/24"), "dev", "pod0"]);
    node.ip(&["link", "set", "pod0", "up"]);
    run(node.cmd("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]));
    let server = pod
        .cmd("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            &format!("10.0.{subnet}.2"),
            "8080",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(server)
}

#[tokio::test]
async fn check_reports_ok_fail_and_error_rows() {
    if !requirements_met(
        "check_reports_ok_fail_and_error_rows",
        &["ip", "ping", "bash", "timeout", "python3"],
        &[],
    ) {
        return;
    }
    let (node_a, node_b) = (Netns::new("ck-na"), Netns::new("ck-nb"));
    let (pod_a, pod_b) = (Netns::new("ck-pa"), Netns::new("ck-pb"));
    let _servers = [
        pod_behind(&pod_a, &node_a, 1),
        pod_behind(&pod_b, &node_b, 2),
    ];
    node_a.ip(&[
        "link",
        "add",
        "u0",
        "type",
        "veth",
        "peer",
        "name",
        "u0",
        "netns",
        &node_b.name,
    ]);
    node_a.ip(&["addr", "add", "192.168.95.1/24", "dev", "u0"]);
    node_b.ip(&["addr", "add", "192.168.95.2/24", "dev", "u0"]);
    node_a.ip(&["link", "set", "u0", "up"]);
    node_b.ip(&["link", "set", "u0", "up"]);
    node_a.ip(&["route", "add", "10.0.2.0/24", "via", "192.168.95.2"]);
    node_b.ip(&["route", "add", "10.0.1.0/24", "via", "192.168.95.1"]);
    // Wait for the servers to listen.
    for (ns, addr) in [(&pod_b, "10.0.2.2"), (&pod_a, "10.0.1.2")] {
        let mut up = false;
        for _ in 0..50 {
            up = succeeds(
                ns.cmd("bash")
                    .args(["-c", &format!("exec 3<>/dev/tcp/{addr}/8080")]),
            );
            if up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "server {addr} not listening");
    }

    let pod = |name: &str, ns: &Netns, ip: &str| {
        PodEndpoint::new(Endpoint::new(name, &ns.name), ip.parse().unwrap()).with_tcp_port(8080)
    };
    let a = ClusterEndpoints::new("a")
        .with_node(Endpoint::new("a/node", &node_a.name))
        .with_pod(pod("a/pod", &pod_a, "10.0.1.2"));
    let b = ClusterEndpoints::new("b")
        .with_node(Endpoint::new("b/node", &node_b.name))
        .with_pod(pod("b/pod", &pod_b, "10.0.2.2"))
        // Not running: nothing answers at this address.
        .with_pod(pod("b/gone", &pod_b, "10.0.2.99"));
    let identity = |cidr: &str| RemoteCidrs {
        pod: vec![Mapping::identity(cidr.parse().unwrap()).unwrap()],
        external: vec![],
    };
    let probe = NetnsProbe::default();
    let report = check_peering(
        &probe,
        &a,
        &b,
        &identity("10.0.2.0/24"),
        &identity("10.0.1.0/24"),
    )
    .await;
    let table = report.render();
    println!("{table}");

    // a/pod -> b/pod, a/pod -> b/gone, b/pod -> a/pod, b/gone -> a/pod (the gone pod's
    // namespace exists: it is pod-b's), a/node -> b/pod, a/node -> b/gone, b/node -> a/pod.
    assert_eq!(report.rows.len(), 7, "{table}");
    for row in &report.rows {
        let to_gone = row.case.target == "b/gone";
        let expected = if to_gone { Outcome::Fail } else { Outcome::Ok };
        assert_eq!(row.icmp, expected, "{table}");
        assert_eq!(row.tcp, expected, "{table}");
        assert_eq!(row.rtt.is_some(), !to_gone, "{table}");
    }
    assert!(
        report
            .rows
            .iter()
            .any(|r| r.case.kind == CaseKind::NodeToPod && r.is_ok())
    );
    assert!(!report.all_ok());
    assert_eq!(report.failures().count(), 2);
    assert!(
        table.lines().next().unwrap().starts_with("CHECK"),
        "{table}"
    );
    assert!(
        table.contains("10.0.2.99") && table.contains("FAIL"),
        "{table}"
    );

    // A source that cannot probe at all is an ERROR, not a FAIL.
    let broken = ClusterEndpoints::new("c").with_pod(PodEndpoint::new(
        Endpoint::new("c/pod", "liqo-test-no-such-netns"),
        "10.0.3.2".parse().unwrap(),
    ));
    let report = check_peering(
        &probe,
        &broken,
        &b,
        &RemoteCidrs::default(),
        &RemoteCidrs::default(),
    )
    .await;
    let first = &report.rows[0];
    assert!(
        matches!(first.icmp, Outcome::Error(_)),
        "{}",
        report.render()
    );
    assert!(
        report.render().contains("error: c/pod -> b/pod"),
        "{}",
        report.render()
    );
}
