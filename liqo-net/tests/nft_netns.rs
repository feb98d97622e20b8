//! Data-plane tests of the gateway remapping tables with the real `nft`, in throwaway network
//! namespaces.
//!
//! They need root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` and `nft`. Without them they are
//! skipped, unless the environment variable `CI` is set: then they fail. Every namespace is
//! removed when its guard is dropped, also when a test panics. Manual cleanup, should a test
//! process be killed: `ip netns list | grep liqo-test- | cut -d' ' -f1 | xargs -rn1 ip netns del`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Stdio};

use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_net::nat::{CidrKind, RemapTables};

mod support;
use support::{Netns, requirements_met, run};

/// What these tests do in a namespace besides what [`support::Netns`] offers.
impl Netns {
    /// `nft <args>` in the namespace, which must succeed.
    fn nft(&self, args: &[&str]) -> String {
        run(self.cmd("nft").args(args))
    }

    /// Loads `script` with `nft -f -`; panics with nft's message if it is refused.
    fn nft_load(&self, script: &str) {
        let mut child = self
            .cmd("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -f refused the script ({}): {}\n{script}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The names of the tables in the namespace, as `nft list tables` prints them.
    fn tables(&self) -> Vec<String> {
        self.nft(&["list", "tables"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `sysctl -w key=value` in the namespace.
    fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        run(self
            .cmd("sh")
            .args(["-c", &format!("echo {value} > {path}")]));
    }
}

/// A child process, killed on drop (so a failing test leaves nothing running).
struct Process(Child);

impl Process {
    fn stdout(&mut self) -> ChildStdout {
        self.0.stdout.take().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mapping(real: &str, remapped: &str) -> Mapping {
    Mapping::new(real.parse().unwrap(), remapped.parse().unwrap()).unwrap()
}

fn table_names(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[test]
fn remap_tables_load_reapply_and_remove() {
    if !requirements_met("remap_tables_load_reapply_and_remove", &["ip", "nft"], &[]) {
        return;
    }
    let ns = Netns::new("nft");
    // A table someone else owns, which must survive everything below.
    ns.nft_load("table ip other {\n\tchain c {\n\t\ttype filter hook forward priority 0; policy accept;\n\t}\n}\n");

    let both = RemoteCidrs {
        pod: vec![mapping("10.0.0.0/16", "10.1.0.0/16")],
        external: vec![mapping("10.70.0.0/16", "10.71.0.0/16")],
    };
    let tables = RemapTables::new("eth0", "liqo-tunnel", &both).unwrap();
    ns.nft_load(&tables.render());

    // The kernel holds exactly the rendered tables, prefix NAT included.
    for kind in CidrKind::ALL {
        let listed = ns.nft(&["list", "table", "ip", kind.table_name()]);
        assert_eq!(listed, tables.table(kind).unwrap(), "{}", kind.table_name());
    }
    let pod = ns.nft(&["list", "table", "ip", "remap-podcidr"]);
    assert!(pod.contains("dnat prefix to 10.0.0.0/16"), "{pod}");
    assert!(pod.contains("snat prefix to 10.1.0.0/16"), "{pod}");

    // Applying again changes nothing.
    let before = ns.nft(&["list", "ruleset"]);
    ns.nft_load(&tables.render());
    assert_eq!(ns.nft(&["list", "ruleset"]), before);

    // The external CIDR no longer collides: its table goes, the pod one stays.
    let pod_only = RemoteCidrs {
        pod: both.pod,
        external: vec![Mapping::identity("10.70.0.0/16".parse().unwrap()).unwrap()],
    };
    let tables = RemapTables::new("eth0", "liqo-tunnel", &pod_only).unwrap();
    ns.nft_load(&tables.render());
    let listed = ns.tables();
    assert_eq!(
        table_names(&listed),
        ["table ip other", "table ip remap-podcidr"]
    );

    // Removal, twice: only the foreign table is left.
    ns.nft_load(&RemapTables::render_removal());
    ns.nft_load(&RemapTables::render_removal());
    let listed = ns.tables();
    assert_eq!(table_names(&listed), ["table ip other"]);
}

/// Starts, in `ns`, a TCP server on port 8080 that answers its first client with the
/// client's address as the server sees it, and waits until it listens.
fn peer_address_server(ns: &Netns) -> (Process, BufReader<ChildStdout>) {
    const SERVER: &str = "import socket\n\
        s = socket.socket()\n\
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.settimeout(20)\n\
        s.bind(('0.0.0.0', 8080))\n\
        s.listen(1)\n\
        print('ready', flush=True)\n\
        c, addr = s.accept()\n\
        c.sendall(addr[0].encode())\n\
        c.close()\n";
    let mut server = Process(
        ns.cmd("python3")
            .args(["-c", SERVER])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(server.stdout());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (server, stdout)
}

/// Connects from `ns` to `addr`:8080 and returns what the server answered.
fn connect(ns: &Netns, addr: &str) -> String {
    const CLIENT: &str = "import socket, sys\n\
        c = socket.create_connection((sys.argv[1], 8080), timeout=10)\n\
        print(c.recv(100).decode())\n";
    run(ns.cmd("python3").args(["-c", CLIENT, addr]))
        .trim()
        .to_owned()
}

/// Local pod 10.50.0.2 and remote pod 10.0.0.5 (seen locally as 10.1.0.5), with the gateway
/// between them applying the rendered rules:
///
/// ```text
/// [pod] eth0 10.50.0.2 ── pod0 10.50.0.1 [gw] liqo-tunnel 169.254.18.1 ── eth0 169.254.18.2 [remote]
///                                       ext0 (default interface)     lo 10.0.0.5
/// ```
///
/// The tunnel is a plain veth named like the real one: these rules only match interface names.
#[test]
fn remapped_traffic_is_translated_both_ways() {
    if !requirements_met(
        "remapped_traffic_is_translated_both_ways",
        &["ip", "nft", "python3"],
        &[],
    ) {
        return;
    }
    let gw = Netns::new("nat-gw");
    let pod = Netns::new("nat-pod");
    let remote = Netns::new("nat-remote");

    // No dummy module everywhere: a veth pair, both ends in the gateway, stands in.
    gw.ip(&[
        "link",
        "add",
        "ext0",
        "type",
        "veth",
        "peer",
        "name",
        "ext0-peer",
    ]);
    gw.ip(&["link", "set", "ext0", "up"]);
    gw.ip(&[
        "link", "add", "pod0", "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
    ]);
    gw.ip(&[
        "link",
        "add",
        "liqo-tunnel",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &remote.name,
    ]);
    gw.ip(&["addr", "add", "10.50.0.1/24", "dev", "pod0"]);
    gw.ip(&["addr", "add", "169.254.18.1/30", "dev", "liqo-tunnel"]);
    gw.ip(&["link", "set", "pod0", "up"]);
    gw.ip(&["link", "set", "liqo-tunnel", "up"]);
    gw.ip(&["route", "add", "10.0.0.0/16", "via", "169.254.18.2"]);
    gw.sysctl("net.ipv4.ip_forward", "1");

    pod.ip(&["addr", "add", "10.50.0.2/24", "dev", "eth0"]);
    pod.ip(&["link", "set", "eth0", "up"]);
    // The local pod knows the peer only by its remapped CIDR.
    pod.ip(&["route", "add", "10.1.0.0/16", "via", "10.50.0.1"]);

    remote.ip(&["addr", "add", "169.254.18.2/30", "dev", "eth0"]);
    remote.ip(&["addr", "add", "10.0.0.5/32", "dev", "lo"]);
    remote.ip(&["link", "set", "eth0", "up"]);
    remote.ip(&[
        "route",
        "add",
        "10.50.0.0/24",
        "via",
        "169.254.18.1",
        "src",
        "10.0.0.5",
    ]);

    let peer = RemoteCidrs {
        pod: vec![mapping("10.0.0.0/16", "10.1.0.0/16")],
        external: vec![],
    };
    let tables = RemapTables::new("ext0", "liqo-tunnel", &peer).unwrap();
    gw.nft_load(&tables.render());

    // Local pod -> remapped address: the destination is translated to the real pod, whose
    // server sees the local pod's own address.
    let (_server, _out) = peer_address_server(&remote);
    assert_eq!(connect(&pod, "10.1.0.5"), "10.50.0.2");

    // Remote pod -> local pod: its source is translated, so the local pod sees the remapped
    // address (and can answer, having no route to the real CIDR).
    let (_server, _out) = peer_address_server(&pod);
    assert_eq!(connect(&remote, "10.50.0.2"), "10.1.0.5");

    // Without the rules, the remapped address leads nowhere.
    gw.nft_load(&RemapTables::render_removal());
    let (_server, _out) = peer_address_server(&remote);
    let failed = !ns_connect_succeeds(&pod, "10.1.0.5");
    assert!(failed, "10.1.0.5 reachable without the remapping rules");
}

/// Whether a connection from `ns` to `addr`:8080 gets an answer (short timeout).
fn ns_connect_succeeds(ns: &Netns, addr: &str) -> bool {
    const CLIENT: &str = "import socket, sys\n\
        c = socket.create_connection((sys.argv[1], 8080), timeout=2)\n\
        print(c.recv(100).decode())\n";
    ns.cmd("python3")
        .args(["-c", CLIENT, addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
