//! Data-plane test of the plain VXLAN backend (feature `vxlan`, enabled for tests by the
//! crate's self dev-dependency): two endpoints in throwaway network namespaces, joined by a
//! veth pair, exchange ICMP and TCP through the VXLAN tunnel, driven only through the
//! `TunnelBackend` trait.
//!
//! It needs root, `ip`, `ping` and `python3`; without them it is skipped, unless `CI` is
//! set: then it fails. Namespaces are removed when their guards drop, also on panic. Manual
//! cleanup, should the process be killed: `ip netns list | grep liqo-test-vx | cut -d' ' -f1 |
//! xargs -rn1 ip netns del`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;

use liqo_net::tunnel::{InterfaceSpec, PeerSpec};
use liqo_net::vxlan::VxlanBackend;
use liqo_net::{Error, TunnelBackend};

mod support;
use support::{Netns, requirements_met, run, succeeds};

const LINK: &str = "lna-vx";

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a TCP echo server on `addr`:8080 in `ns` (one line per connection, answered
/// upper-cased) and waits until it listens.
fn echo_server(ns: &Netns, addr: &str) -> Process {
    const SERVER: &str = "import socket, sys\n\
        s = socket.socket()\n\
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind((sys.argv[1], 8080))\n\
        s.listen(4)\n\
        print('ready', flush=True)\n\
        while True:\n\
        \x20   c, _ = s.accept()\n\
        \x20   c.sendall(c.recv(100).upper())\n\
        \x20   c.close()\n";
    let mut child = ns
        .cmd("python3")
        .args(["-c", SERVER, addr])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Process(child)
}

/// Sends `hello` from `ns` to `addr`:8080 and returns the answer.
fn tcp_exchange(ns: &Netns, addr: &str) -> String {
    const CLIENT: &str = "import socket, sys\n\
        c = socket.create_connection((sys.argv[1], 8080), timeout=5)\n\
        c.sendall(b'hello')\n\
        print(c.recv(100).decode())\n";
    run(ns.cmd("python3").args(["-c", CLIENT, addr]))
        .trim()
        .to_owned()
}

fn ping(ns: &Netns, addr: &str) -> bool {
    succeeds(ns.cmd("ping").args(["-n", "-c", "2", "-W", "2", addr]))
}

fn ifindex(ns: &Netns) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", LINK]);
    out.split(':').next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn vxlan_backend_carries_icmp_and_tcp() {
    if !requirements_met(
        "vxlan_backend_carries_icmp_and_tcp",
        &["ip", "ping", "python3"],
        &[],
    ) {
        return;
    }
    let a = Netns::new("vx-a");
    let b = Netns::new("vx-b");
    // The underlay: a veth pair created directly inside the namespaces.
    a.ip(&[
        "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &b.name,
    ]);
    a.ip(&["addr", "add", "192.168.91.1/24", "dev", "u0"]);
    b.ip(&["addr", "add", "192.168.91.2/24", "dev", "u0"]);
    a.ip(&["link", "set", "u0", "up"]);
    b.ip(&["link", "set", "u0", "up"]);

    let tunnel_a: Arc<dyn TunnelBackend> =
        Arc::new(VxlanBackend::new(42).unwrap().in_netns(&a.name));
    let tunnel_b: Arc<dyn TunnelBackend> =
        Arc::new(VxlanBackend::new(42).unwrap().in_netns(&b.name));
    let keys_a = tunnel_a.generate_keys().await.unwrap();
    let keys_b = tunnel_b.generate_keys().await.unwrap();
    let spec = |addr: &str, keys: &liqo_net::tunnel::KeyPair| {
        InterfaceSpec::new(addr.parse().unwrap(), keys.private.clone())
            .with_name(LINK)
            .with_listen_port(0)
            .with_mtu(1450)
    };
    let spec_a = spec("10.91.0.1/24", &keys_a);
    let spec_b = spec("10.91.0.2/24", &keys_b);
    tunnel_a.ensure_interface(&spec_a).await.unwrap();
    tunnel_b.ensure_interface(&spec_b).await.unwrap();
    let peer_b = PeerSpec::new(keys_b.public).with_endpoint("192.168.91.2:4789".parse().unwrap());
    let peer_a = PeerSpec::new(keys_a.public).with_endpoint("192.168.91.1:4789".parse().unwrap());
    tunnel_a.upsert_peer(&peer_b).await.unwrap();
    tunnel_b.upsert_peer(&peer_a).await.unwrap();

    // The link is what was asked for.
    let details = a.ip(&["-d", "link", "show", "dev", LINK]);
    assert!(
        details.contains("vxlan id 42 remote 192.168.91.2"),
        "{details}"
    );
    assert!(details.contains("dstport 4789"), "{details}");
    assert!(details.contains("mtu 1450"), "{details}");
    assert!(
        a.ip(&["addr", "show", "dev", LINK])
            .contains("10.91.0.1/24")
    );

    // ICMP and TCP through the tunnel, both ways.
    assert!(ping(&a, "10.91.0.2"), "no ping a -> b over VXLAN");
    assert!(ping(&b, "10.91.0.1"), "no ping b -> a over VXLAN");
    let _server = echo_server(&b, "10.91.0.2");
    assert_eq!(tcp_exchange(&a, "10.91.0.2"), "HELLO");

    // Status: the link's counters, no handshake.
    let status = tunnel_a.status().await.unwrap();
    assert_eq!(status.interface.as_deref(), Some(LINK));
    let peer = status.peer(&keys_b.public).unwrap();
    assert!(peer.tx_bytes > 0 && peer.rx_bytes > 0, "{peer:?}");
    assert_eq!(peer.last_handshake, None);

    // Idempotent: the same calls leave the same link in place.
    let index = ifindex(&a);
    tunnel_a.ensure_interface(&spec_a).await.unwrap();
    tunnel_a.upsert_peer(&peer_b).await.unwrap();
    assert_eq!(ifindex(&a), index, "an unchanged spec recreated the link");

    // A second peer is refused, saying why.
    let other = tunnel_a.generate_keys().await.unwrap().public;
    let err = tunnel_a
        .upsert_peer(&PeerSpec::new(other).with_endpoint("192.168.91.3:4789".parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyPeers { .. }), "{err}");
    assert!(err.to_string().contains("single peer"), "{err}");

    // A new endpoint recreates the link (VXLAN cannot change `remote` in place) ...
    let moved = peer_b
        .clone()
        .with_endpoint("192.168.91.9:4789".parse().unwrap());
    tunnel_a.upsert_peer(&moved).await.unwrap();
    assert!(
        a.ip(&["-d", "link", "show", "dev", LINK])
            .contains("remote 192.168.91.9")
    );
    assert!(
        !ping(&a, "10.91.0.2"),
        "traffic still reaches the old endpoint"
    );
    // ... and going back restores the traffic.
    tunnel_a.upsert_peer(&peer_b).await.unwrap();
    assert!(
        ping(&a, "10.91.0.2"),
        "no ping after restoring the endpoint"
    );

    // Something else deleting the link is repaired by the next ensure_interface.
    a.ip(&["link", "delete", "dev", LINK]);
    tunnel_a.ensure_interface(&spec_a).await.unwrap();
    assert!(
        ping(&a, "10.91.0.2"),
        "no ping after the link was re-created"
    );

    // Removing the peer leaves the link without remote; an unknown peer is no error.
    tunnel_a.remove_peer(&keys_b.public).await.unwrap();
    tunnel_a.remove_peer(&other).await.unwrap();
    assert!(
        !a.ip(&["-d", "link", "show", "dev", LINK])
            .contains("remote")
    );
    assert!(tunnel_a.status().await.unwrap().peers.is_empty());

    // Teardown leaves no link, and is idempotent.
    tunnel_a.teardown().await.unwrap();
    tunnel_b.teardown().await.unwrap();
    tunnel_a.teardown().await.unwrap();
    assert!(!a.has_link(LINK) && !b.has_link(LINK));
    assert_eq!(tunnel_a.status().await.unwrap().interface, None);
}
