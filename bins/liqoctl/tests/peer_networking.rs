//! `liqoctl peer` with networking, end to end: two real control planes with the same pod
//! CIDR, liqo-controller-manager on each (IPAM and Configuration controllers remap the
//! peer's CIDRs), and liqo-gateway processes in network namespaces started as their
//! GatewayServer and GatewayClient appear (what the kubelet of a gateway pod would do). The
//! peering completes only once both Connections are Connected; then pods and nodes of each
//! cluster reach the other's pods (the network check `liqoctl test network` runs), and
//! `liqoctl unpeer` removes the gateways' data plane.
//!
//! Needs root (network namespaces, nftables, WireGuard); skipped otherwise, except under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::*;
use kube::Api;
use liqo_core::api::networking::v1beta1::{Configuration, GatewayClient, GatewayServer};
use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_net::check::{NetnsProbe, check_peering};
use liqo_testenv::{Cluster, ClusterConfig, eventually};

const WAIT: Duration = Duration::from_secs(120);

fn gateway_args(cluster: &Cluster, mode: &str, name: &str, tunnel: &str) -> Vec<String> {
    [
        "--kubeconfig",
        cluster.kubeconfig_path().to_str().unwrap(),
        "--mode",
        mode,
        "--name",
        name,
        "--namespace",
        &format!("liqo-tenant-{name}"),
        "--remote-cluster-id",
        name,
        "--tunnel-interface",
        tunnel,
        "--ping-interval",
        "0.5",
        "--resync",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The remote CIDRs `on` sees for `peer`, from its Configuration.
async fn view(on: &Cluster, peer: &str) -> RemoteCidrs {
    let cfg = Api::<Configuration>::namespaced(on.client(), &format!("liqo-tenant-{peer}"))
        .get(peer)
        .await
        .unwrap();
    let real = cfg.spec.remote.unwrap().cidr.unwrap();
    let remapped = cfg.status.unwrap().remote.unwrap().cidr.unwrap();
    let pair = |r: &[liqo_core::api::networking::v1beta1::Cidr],
                m: &[liqo_core::api::networking::v1beta1::Cidr]| {
        r.iter()
            .zip(m)
            .map(|(r, m)| Mapping::new(r.0.parse().unwrap(), m.0.parse().unwrap()).unwrap())
            .collect()
    };
    RemoteCidrs {
        pod: pair(&real.pod, &remapped.pod),
        external: pair(&real.external, &remapped.external),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn liqoctl_peer_sets_up_the_network_through_real_gateways() {
    if !requirements_met(
        "liqoctl peer with networking",
        &["ip", "nft", "ping", "python3"],
        &["/dev/net/tun"],
    ) {
        return;
    }
    let cidr = POD_CIDR.parse().unwrap();
    let clusters = Cluster::start_all(vec![
        ClusterConfig::new("pn-rome").pod_cidr(cidr).nodes(1),
        ClusterConfig::new("pn-milan").pod_cidr(cidr).nodes(1),
    ])
    .await
    .unwrap();
    let (rome, milan) = (&clusters[0], &clusters[1]);
    for c in &clusters {
        c.install_crds(liqo_core::api::crds()).await.unwrap();
    }
    let _m_rome = support::manager(rome, "rome", &[]);
    let _m_milan = support::manager(milan, "milan", &[]);
    support::ready(rome).await;
    support::ready(milan).await;

    // The data plane: a node with two pods per cluster and a gateway namespace each.
    let mut wan = Wan::new();
    let mut sim_rome = SimCluster::new("r");
    let mut sim_milan = SimCluster::new("m");
    let rome_gw = sim_rome.add_gateway("m", &[]);
    let milan_gw = sim_milan.add_gateway("r", &[]);
    wan.attach(&rome_gw);
    wan.attach(&milan_gw);
    forward_port_into(&rome_gw, port_of(rome.apiserver_url()));
    forward_port_into(&milan_gw, port_of(milan.apiserver_url()));
    let dir = std::env::temp_dir().join(format!("liqo-peer-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id() % 100_000;
    let (rome_tunnel, milan_tunnel) = (format!("lpr{pid}"), format!("lpm{pid}"));

    // liqoctl peer runs while the test plays the kubelet of the gateway pods.
    let remote = milan.kubeconfig_path().display().to_string();
    let kubeconfig = rome.kubeconfig_path().display().to_string();
    let mut peer = tokio::process::Command::new(env!("CARGO_BIN_EXE_liqoctl"))
        .args([
            "--kubeconfig",
            &kubeconfig,
            "peer",
            "--remote-kubeconfig",
            &remote,
            "--timeout",
            "120s",
        ])
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let servers: Api<GatewayServer> = Api::namespaced(milan.client(), "liqo-tenant-rome");
    // Waits for the GatewayServer; if liqoctl gives up first, its output says why.
    let mut exited = None;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if servers.get_opt("rome").await.ok().flatten().is_some() {
            break;
        }
        if let Some(status) = peer.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if servers.get_opt("rome").await.ok().flatten().is_none() {
        let _ = peer.start_kill();
        let out = peer.wait_with_output().await.unwrap();
        panic!(
            "liqoctl peer did not create the GatewayServer (exit: {exited:?}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let args = gateway_args(milan, "server", "rome", &milan_tunnel);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let milan_proc = start_gateway(&milan_gw, &args, &dir.join("milan.log"));

    let clients: Api<GatewayClient> = Api::namespaced(rome.client(), "liqo-tenant-milan");
    eventually(
        "liqoctl creates the GatewayClient on rome",
        WAIT,
        || async { clients.get_opt("milan").await.ok().flatten() },
    )
    .await;
    let args = gateway_args(rome, "client", "milan", &rome_tunnel);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rome_proc = start_gateway(&rome_gw, &args, &dir.join("rome.log"));

    let out = tokio::time::timeout(Duration::from_secs(300), async {
        let mut stdout = String::new();
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt as _;
        let (mut o, mut e) = (peer.stdout.take().unwrap(), peer.stderr.take().unwrap());
        let _ = tokio::join!(o.read_to_string(&mut stdout), e.read_to_string(&mut stderr));
        (peer.wait().await.unwrap(), stdout, stderr)
    })
    .await
    .expect("liqoctl peer finishes");
    eprintln!("$ liqoctl peer\n{}{}", out.1, out.2);
    assert!(
        out.0.success(),
        "liqoctl peer failed\nrome gateway:\n{}\nmilan gateway:\n{}",
        rome_proc.log_tail(),
        milan_proc.log_tail()
    );

    // The ForeignCluster reports every module Established, networking included.
    eventually("all modules Established in liqoctl info", WAIT, || async {
        let out = support::liqoctl(rome, &["info"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let row: Vec<String> = stdout
            .lines()
            .find(|l| l.starts_with("milan"))?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        (row.len() >= 5 && row[2..5].iter().all(|c| c == "Established")).then_some(())
    })
    .await;

    // Each node routes what its cluster calls the peer to its gateway (the overlay's job).
    let (rome_sees, milan_sees) = (view(rome, "milan").await, view(milan, "rome").await);
    for m in rome_sees.mappings() {
        sim_rome.route_to_gateway(1, &m.remapped().to_string());
    }
    for m in milan_sees.mappings() {
        sim_milan.route_to_gateway(1, &m.remapped().to_string());
    }
    let report = check_peering(
        &NetnsProbe::default(),
        &sim_rome.check_endpoints("rome"),
        &sim_milan.check_endpoints("milan"),
        &rome_sees,
        &milan_sees,
    )
    .await;
    eprintln!("{}", report.render());
    assert!(report.all_ok(), "{}", report.render());

    // Unpeering deletes the gateway resources: both gateways remove their data plane.
    let out = support::liqoctl(rome, &["unpeer", "--remote-kubeconfig", &remote]);
    assert!(out.status.success(), "liqoctl unpeer failed");
    for (ns, tunnel) in [(&rome_gw, &rome_tunnel), (&milan_gw, &milan_tunnel)] {
        let (ns, tunnel) = (ns.name.clone(), tunnel.clone());
        eventually("the gateway's tunnel removed after unpeer", WAIT, || {
            let (ns, tunnel) = (ns.clone(), tunnel.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    !succeeds(
                        std::process::Command::new("ip").args(["-n", &ns, "link", "show", &tunnel]),
                    )
                })
                .await
                .unwrap()
                .then_some(())
            }
        })
        .await;
    }
    let statuses =
        tokio::task::spawn_blocking(move || (rome_proc.terminate(), milan_proc.terminate()))
            .await
            .unwrap();
    assert!(statuses.0.success() && statuses.1.success(), "{statuses:?}");
    assert_eq!(leftovers(&rome_gw, &rome_tunnel), Vec::<String>::new());
    assert_eq!(leftovers(&milan_gw, &milan_tunnel), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
