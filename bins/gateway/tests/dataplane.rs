//! The gateway binary in Linux network namespaces, from static configuration files: three
//! clusters that all use pod CIDR 10.0.0.0/16, pod-to-pod and node-to-pod traffic over real
//! WireGuard tunnels and nftables remapping, a third cluster joining without disturbing the
//! first pair, a gateway SIGKILLed and restarted, and nothing left afterwards.
//!
//! Needs root, `ip`, `nft`, `ping`, `python3` and /dev/net/tun; skipped otherwise, except
//! under `CI`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use liqo_net::TunnelBackend as _;

/// How cluster `from` sees the others: pod and external CIDRs remapped.
fn remapped(peer: &str) -> (&'static str, &'static str) {
    match peer {
        "b" | "a" => ("10.71.0.0/16", "10.91.0.0/16"),
        "c" => ("10.72.0.0/16", "10.92.0.0/16"),
        _ => unreachable!(),
    }
}

struct Keys {
    private: String,
    public: String,
}

fn keys() -> Keys {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pair = rt
        .block_on(liqo_net::WireGuardBackend::default().generate_keys())
        .unwrap();
    Keys {
        private: pair.private.to_base64(),
        public: pair.public.to_base64(),
    }
}

/// The YAML of one gateway: `local` sees `peer` through `view` (remapped pod, external).
#[allow(clippy::too_many_arguments)]
fn config(
    mode: &str,
    tunnel: &str,
    own: &Keys,
    peer: &Keys,
    endpoint: Option<&str>,
    view: (&str, &str),
    table: &str,
    full_masquerade: bool,
) -> String {
    let endpoint = endpoint.map_or(String::new(), |e| format!("\n  endpoint: {e}:51840"));
    format!(
        "mode: {mode}\n\
         tunnelInterface: {tunnel}\n\
         privateKey: {}\n\
         peer:\n  publicKey: {}{endpoint}\n\
         remote:\n  pod:\n  - real: {POD_CIDR}\n    remapped: {}\n  external:\n  - real: {EXTERNAL_CIDR}\n    remapped: {}\n\
         localPodCidrs: [{POD_CIDR}]\n\
         localExternalCidr: {EXTERNAL_CIDR}\n\
         table: {table}\n\
         fullMasquerade: {full_masquerade}\n",
        own.private, peer.public, view.0, view.1
    )
}

/// A peering between cluster `client` (its gateway `client_gw`) and `server`.
struct Peering {
    client_gw: Netns,
    server_gw: Netns,
    client_cfg: std::path::PathBuf,
    server_cfg: std::path::PathBuf,
    client_tunnel: String,
    server_tunnel: String,
}

fn peering(
    dir: &Path,
    wan: &mut Wan,
    client: &mut SimCluster,
    server: &mut SimCluster,
    client_full_masquerade: bool,
) -> Peering {
    let (cv, sv) = (remapped(&server.tag), remapped(&client.tag));
    let client_gw = client.add_gateway(&server.tag, &[cv.0, cv.1]);
    let server_gw = server.add_gateway(&client.tag, &[sv.0, sv.1]);
    wan.attach(&client_gw);
    let server_addr = wan.attach(&server_gw);
    let (ck, sk) = (keys(), keys());
    let pid = std::process::id() % 100_000;
    let client_tunnel = format!("lt{}{}{pid}", client.tag, server.tag);
    let server_tunnel = format!("lt{}{}{pid}", server.tag, client.tag);
    let client_cfg = dir.join(format!("{}-{}.yaml", client.tag, server.tag));
    let server_cfg = dir.join(format!("{}-{}.yaml", server.tag, client.tag));
    std::fs::write(
        &client_cfg,
        config(
            "client",
            &client_tunnel,
            &ck,
            &sk,
            Some(&server_addr),
            cv,
            &format!("liqo-gw-{}", server.tag),
            client_full_masquerade,
        ),
    )
    .unwrap();
    std::fs::write(
        &server_cfg,
        config(
            "server",
            &server_tunnel,
            &sk,
            &ck,
            None,
            sv,
            &format!("liqo-gw-{}", client.tag),
            false,
        ),
    )
    .unwrap();
    Peering {
        client_gw,
        server_gw,
        client_cfg,
        server_cfg,
        client_tunnel,
        server_tunnel,
    }
}

fn gateway(ns: &Netns, cfg: &Path, dir: &Path, name: &str) -> Proc {
    start_gateway(
        ns,
        &["--config", cfg.to_str().unwrap(), "--ping-interval", "0.5"],
        &dir.join(format!("{name}.log")),
    )
}

/// The remapped address of pod `ip` (10.0.x.y) in a view CIDR like 10.71.0.0/16.
fn at(view: &str, ip: &str) -> String {
    let prefix: Vec<&str> = view.split('.').take(2).collect();
    let host: Vec<&str> = ip.split('.').skip(2).collect();
    format!("{}.{}", prefix.join("."), host.join("."))
}

#[test]
fn three_clusters_with_the_same_pod_cidr_reach_each_other_through_the_gateways() {
    if !requirements_met(
        "gateway data-plane test",
        &["ip", "nft", "ping", "python3"],
        &["/dev/net/tun"],
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("liqo-gw-dataplane-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tag = format!("-{}", std::process::id());

    let mut wan = Wan::new();
    let mut a = SimCluster::new("a");
    let mut b = SimCluster::new("b");
    let ab = peering(&dir, &mut wan, &mut a, &mut b, false);
    let mut gw_ab = gateway(&ab.client_gw, &ab.client_cfg, &dir, "a-b");
    let gw_ba = gateway(&ab.server_gw, &ab.server_cfg, &dir, "b-a");

    // a sees b's pods in 10.71.0.0/16, b sees a's pods in 10.71.0.0/16 too; both pods
    // called 10.0.1.10 reach each other.
    let b_pod1 = at(remapped("b").0, POD1);
    let a_pod1_from_b = at(remapped("a").0, POD1);
    let took = wait_for(
        "a-p1 -> b-p1 over the tunnel",
        Duration::from_secs(60),
        || ping(a.pod(0), &b_pod1),
    );
    eprintln!("first ping a-p1 -> b-p1 ({b_pod1}) after {took:?}");
    // Both gateways' connection checks see the peer over the tunnel.
    for (name, gw) in [("a-b", &gw_ab), ("b-a", &gw_ba)] {
        let log = gw.log.clone().unwrap();
        wait_for(
            &format!("{name} connected"),
            Duration::from_secs(30),
            || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("connected=true")),
        );
    }
    assert!(
        ping(b.pod(0), &a_pod1_from_b),
        "b-p1 -> a-p1 ({a_pod1_from_b}); a-b log:\n{}\nb-a log:\n{}",
        gw_ab.log_tail(),
        gw_ba.log_tail()
    );
    // TCP both ways; the server sees the client at its remapped address.
    let b_pod2 = at(remapped("b").0, POD2);
    assert_eq!(
        tcp(a.pod(0), &b_pod2).as_deref(),
        Some(format!("b-p2 {a_pod1_from_b}").as_str())
    );
    let a_pod2_from_b = at(remapped("a").0, POD2);
    assert_eq!(
        tcp(b.pod(0), &a_pod2_from_b).as_deref(),
        Some(format!("a-p2 {b_pod1}").as_str())
    );
    // Node to pod: the node's address is not a pod address, so the gateway sends it as the
    // unknown-source IP (10.70.0.0), which b sees through its view of a's external CIDR.
    assert!(ping(&a.node, &b_pod1), "a-node -> b-p1");
    assert_eq!(
        tcp(&a.node, &b_pod2).as_deref(),
        Some(format!("b-p2 {}", at(remapped("a").1, "10.70.0.0")).as_str())
    );
    // Unrelated addresses are not captured: 10.0.1.10 on a is a's own pod.
    assert_eq!(
        tcp(a.pod(0), POD2).as_deref(),
        Some(format!("a-p2 {POD1}").as_str())
    );

    // A third cluster peers with a (a's gateway with fullMasquerade) while a-p1 pings b-p1
    // continuously.
    let background = a
        .pod(0)
        .cmd("ping")
        .args(["-i", "0.2", "-W", "1", &b_pod1])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = SimCluster::new("c");
    let ac = peering(&dir, &mut wan, &mut a, &mut c, true);
    let gw_ac = gateway(&ac.client_gw, &ac.client_cfg, &dir, "a-c");
    let gw_ca = gateway(&ac.server_gw, &ac.server_cfg, &dir, "c-a");
    let c_pod1 = at(remapped("c").0, POD1);
    wait_for("a-p1 -> c-p1", Duration::from_secs(60), || {
        ping(a.pod(0), &c_pod1)
    });
    assert!(ping(c.pod(0), &at(remapped("a").0, POD1)), "c-p1 -> a-p1");
    assert_eq!(
        tcp(c.pod(1), &at(remapped("a").0, POD2)).as_deref(),
        Some(format!("a-p2 {}", at(remapped("c").0, POD2)).as_str())
    );
    // With fullMasquerade on a's side, c sees every connection from a as a's unknown-source
    // IP (10.70.0.0, which c calls 10.91.0.0), pods included.
    assert_eq!(
        tcp(a.pod(0), &at(remapped("c").0, POD2)).as_deref(),
        Some(format!("c-p2 {}", at(remapped("a").1, "10.70.0.0")).as_str())
    );
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &background.id().to_string()])
        .status();
    let out = background.wait_with_output().unwrap();
    let stats = String::from_utf8_lossy(&out.stdout);
    let line = stats
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_owned();
    let numbers: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (sent, received) = (numbers[0], numbers[1]);
    eprintln!("a-p1 -> b-p1 while c joined: {line}");
    // The packet in flight when ping was interrupted may be counted as lost.
    assert!(
        sent >= 10 && received + 1 >= sent,
        "traffic between a and b was disturbed while c joined: {line}"
    );

    // The gateway of a towards b is SIGKILLed and started again with no manual step.
    gw_ab.kill();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !ping(a.pod(0), &b_pod1),
        "traffic flows without the gateway?"
    );
    gw_ab = gateway(&ab.client_gw, &ab.client_cfg, &dir, "a-b-restarted");
    let restored = wait_for(
        "traffic a -> b after the gateway restart",
        Duration::from_secs(60),
        || ping(a.pod(0), &b_pod1),
    );
    eprintln!("traffic restored {restored:?} after restarting the killed gateway");
    assert!(tcp(a.pod(0), &b_pod2).is_some());

    // SIGTERM leaves nothing behind in any gateway namespace.
    for (proc, ns, tunnel) in [
        (gw_ab, &ab.client_gw, &ab.client_tunnel),
        (gw_ba, &ab.server_gw, &ab.server_tunnel),
        (gw_ac, &ac.client_gw, &ac.client_tunnel),
        (gw_ca, &ac.server_gw, &ac.server_tunnel),
    ] {
        let log = proc.log_tail();
        let status = proc.terminate();
        assert!(status.success(), "gateway exited with {status}:\n{log}");
        assert_eq!(
            leftovers(ns, tunnel),
            Vec::<String>::new(),
            "in {}",
            ns.name
        );
    }
    drop((ab, ac, a, b, c, wan));
    assert_eq!(namespaces_with(&tag), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
