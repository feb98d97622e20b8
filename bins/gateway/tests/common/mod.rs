//! A simulated cluster network in Linux network namespaces, shared by the gateway's
//! data-plane tests: per cluster a node with pods behind a bridge, gateways linked to the
//! node, and a shared "internet" the gateways reach each other through.
//!
//! Every cluster uses pod CIDR 10.0.0.0/16 and external CIDR 10.70.0.0/16, so nothing can
//! work without the gateways' remapping.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)] // synchronous tests: no runtime to block

#[path = "../../../../liqo-net/tests/support/mod.rs"]
pub(crate) mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) use support::{Netns, requirements_met, run, succeeds};

/// Pod CIDR of every simulated cluster.
pub const POD_CIDR: &str = "10.0.0.0/16";
/// External CIDR of every simulated cluster.
pub const EXTERNAL_CIDR: &str = "10.70.0.0/16";
/// Address of the first pod of every cluster.
pub const POD1: &str = "10.0.1.10";
/// Address of the second pod of every cluster.
pub const POD2: &str = "10.0.1.11";
/// TCP port the pods' echo servers listen on.
pub const ECHO_PORT: u16 = 8080;

/// The shared "internet": a bridge in its own namespace.
pub struct Wan {
    pub ns: Netns,
    next: u8,
}

impl Wan {
    pub fn new() -> Self {
        let ns = Netns::new("wan");
        ns.ip(&["link", "add", "br0", "type", "bridge"]);
        ns.ip(&["link", "set", "br0", "up"]);
        Self { ns, next: 1 }
    }

    /// Plugs `gw` into the bridge with link `wan` and returns its address.
    pub fn attach(&mut self, gw: &Netns) -> String {
        let n = self.next;
        self.next += 1;
        let port = format!("p{n}");
        veth(gw, "wan", &self.ns, &port);
        self.ns.ip(&["link", "set", &port, "master", "br0"]);
        self.ns.ip(&["link", "set", &port, "up"]);
        let addr = format!("198.18.0.{n}");
        gw.ip(&["addr", "add", &format!("{addr}/24"), "dev", "wan"]);
        gw.ip(&["link", "set", "wan", "up"]);
        gw.ip(&[
            "route",
            "add",
            "default",
            "via",
            "198.18.0.254",
            "dev",
            "wan",
        ]);
        addr
    }
}

/// Creates a veth pair with one end in each namespace.
pub fn veth(a: &Netns, name_a: &str, b: &Netns, name_b: &str) {
    run(Command::new("ip").args([
        "link", "add", name_a, "netns", &a.name, "type", "veth", "peer", "name", name_b, "netns",
        &b.name,
    ]));
}

/// One simulated cluster: a node namespace with two pods behind a bridge.
pub struct SimCluster {
    pub tag: String,
    pub node: Netns,
    pub pods: Vec<Netns>,
    links: u8,
    /// Echo servers in the pods.
    servers: Vec<Proc>,
}

impl SimCluster {
    pub fn new(tag: &str) -> Self {
        let node = Netns::new(&format!("{tag}-node"));
        node.ip(&["link", "add", "br0", "type", "bridge"]);
        node.ip(&["addr", "add", "10.0.1.1/24", "dev", "br0"]);
        node.ip(&["link", "set", "br0", "up"]);
        node.sysctl("net/ipv4/ip_forward", "1");
        let mut pods = Vec::new();
        for (i, ip) in [POD1, POD2].into_iter().enumerate() {
            let pod = Netns::new(&format!("{tag}-p{}", i + 1));
            let port = format!("vp{}", i + 1);
            veth(&pod, "eth0", &node, &port);
            node.ip(&["link", "set", &port, "master", "br0"]);
            node.ip(&["link", "set", &port, "up"]);
            pod.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            pod.ip(&["link", "set", "eth0", "up"]);
            pod.ip(&["route", "add", "default", "via", "10.0.1.1"]);
            pods.push(pod);
        }
        let servers = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| echo_server(pod, &format!("{tag}-p{}", i + 1)))
            .collect();
        Self {
            tag: tag.to_owned(),
            node,
            pods,
            links: 0,
            servers,
        }
    }

    /// A gateway namespace linked to the node; the node routes `cidrs` (what this cluster
    /// calls the peer) to it, the gateway routes the local pod CIDR back to the node.
    pub fn add_gateway(&mut self, peer: &str, cidrs: &[&str]) -> Netns {
        self.links += 1;
        let k = self.links;
        let gw = Netns::new(&format!("{}-gw{peer}", self.tag));
        let node_end = format!("to-{peer}");
        veth(&self.node, &node_end, &gw, "node");
        self.node.ip(&[
            "addr",
            "add",
            &format!("192.168.{k}.1/30"),
            "dev",
            &node_end,
        ]);
        self.node.ip(&["link", "set", &node_end, "up"]);
        gw.ip(&["addr", "add", &format!("192.168.{k}.2/30"), "dev", "node"]);
        gw.ip(&["link", "set", "node", "up"]);
        gw.ip(&["route", "add", POD_CIDR, "via", &format!("192.168.{k}.1")]);
        for cidr in cidrs {
            self.node
                .ip(&["route", "add", cidr, "via", &format!("192.168.{k}.2")]);
        }
        gw
    }

    pub fn pod(&self, i: usize) -> &Netns {
        &self.pods[i]
    }

    /// The node and pods of this cluster as endpoints of the network check (pods answer TCP
    /// on [`ECHO_PORT`]).
    pub fn check_endpoints(&self, name: &str) -> liqo_net::check::ClusterEndpoints {
        use liqo_net::check::{ClusterEndpoints, Endpoint, PodEndpoint};
        let mut cluster = ClusterEndpoints::new(name).with_node(Endpoint::new(
            format!("{name}-node"),
            self.node.name.clone(),
        ));
        for (i, ip) in [POD1, POD2].into_iter().enumerate() {
            cluster = cluster.with_pod(
                PodEndpoint::new(
                    Endpoint::new(format!("{name}-pod{}", i + 1), self.pod(i).name.clone()),
                    ip.parse().unwrap(),
                )
                .with_tcp_port(ECHO_PORT),
            );
        }
        cluster
    }

    /// Routes `cidr` from the node to its `k`-th gateway (1-based, in creation order).
    pub fn route_to_gateway(&self, k: u8, cidr: &str) {
        self.node
            .ip(&["route", "replace", cidr, "via", &format!("192.168.{k}.2")]);
    }
}

impl Netns {
    pub fn sysctl(&self, key: &str, value: &str) {
        run(self
            .cmd("sh")
            .args(["-c", &format!("echo {value} > /proc/sys/{key}")]));
    }
}

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
    pub log: Option<PathBuf>,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn signal(&self, signal: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on a child we own; no memory is involved.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP echo server answering each connection with `<name> <peer address>`.
pub fn echo_server(pod: &Netns, name: &str) -> Proc {
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {ECHO_PORT}))\n\
         s.listen(16)\n\
         while True:\n\
         \x20   c, a = s.accept()\n\
         \x20   c.sendall(('{name} ' + a[0] + '\\n').encode())\n\
         \x20   c.close()\n"
    );
    let child = pod
        .cmd("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc { child, log: None }
}

/// One ping from `ns` to `addr` (1 s timeout).
pub fn ping(ns: &Netns, addr: &str) -> bool {
    ping_in(&ns.name, addr)
}

/// One ping from the namespace called `ns` to `addr` (1 s timeout).
pub fn ping_in(ns: &str, addr: &str) -> bool {
    succeeds(Command::new("ip").args(["netns", "exec", ns, "ping", "-c1", "-W1", addr]))
}

/// Connects from `ns` to `addr:ECHO_PORT` and returns the server's line.
pub fn tcp(ns: &Netns, addr: &str) -> Option<String> {
    tcp_in(&ns.name, addr)
}

/// [`tcp`] from the namespace called `ns`.
pub fn tcp_in(ns: &str, addr: &str) -> Option<String> {
    let script = format!(
        "import socket\n\
         s = socket.create_connection(('{addr}', {ECHO_PORT}), timeout=2)\n\
         print(s.recv(100).decode().strip())\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &script])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Polls `check` every 200 ms for up to `within`; returns how long it took.
pub fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The liqo-gateway binary: Cargo's when this is a test of the gateway package, otherwise
/// built next to the running test's binaries (`cargo build -p liqo-gateway`).
pub fn gateway_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_liqo-gateway") {
        return PathBuf::from(path);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "liqo-gateway"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build -p liqo-gateway");
            assert!(status.success(), "cargo build -p liqo-gateway failed");
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/<test> -> target/<profile>/liqo-gateway
            let path = exe
                .parent()
                .and_then(Path::parent)
                .unwrap()
                .join("liqo-gateway");
            assert!(path.exists(), "{} missing", path.display());
            path
        })
        .clone()
}

/// Starts the gateway binary in `ns` with `args`, logging to `log`.
pub fn start_gateway(ns: &Netns, args: &[&str], log: &Path) -> Proc {
    let file = std::fs::File::create(log).unwrap();
    let child = ns
        .cmd(gateway_binary().to_str().unwrap())
        .args(args)
        .env("RUST_LOG", "info,liqo_net=debug")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Proc {
        child,
        log: Some(log.to_owned()),
    }
}

/// What the gateway may leave in its namespace: nothing of this must remain.
pub fn leftovers(gw: &Netns, tunnel: &str) -> Vec<String> {
    let mut found = Vec::new();
    if gw.has_link(tunnel) {
        found.push(format!("link {tunnel}"));
    }
    let tables = run(gw.cmd("nft").args(["list", "tables"]));
    if !tables.trim().is_empty() {
        found.push(format!("nft tables: {}", tables.trim()));
    }
    for line in gw.ip(&["rule", "list"]).lines() {
        let prio: u32 = line
            .split(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        if (1900..2000).contains(&prio) {
            found.push(format!("rule {line}"));
        }
    }
    if Path::new(&format!("/var/run/wireguard/{tunnel}.sock")).exists() {
        found.push(format!("socket /var/run/wireguard/{tunnel}.sock"));
    }
    found
}

/// The network namespaces whose name contains `tag`.
pub fn namespaces_with(tag: &str) -> Vec<String> {
    let mut out = String::new();
    if let Ok(mut child) = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::piped())
        .spawn()
    {
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = child.wait();
    }
    out.lines()
        .filter(|l| l.contains(tag))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

/// The port of an `https://host:port` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Makes a host loopback TCP port (an API server of liqo-testenv) reachable on the same
/// address inside network namespace `ns`, so that a process started there with the
/// cluster's kubeconfig talks to the real API server. Threads live until the test ends.
pub fn forward_port_into(ns: &Netns, port: u16) {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd as _;
    use std::sync::mpsc;

    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (conn_tx, conn_rx) = mpsc::channel::<TcpStream>();
    let path = format!("/var/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("{path}: {e}")));
                return;
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: setns(2) moves only this thread into the namespace of a valid open fd.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            let _ = ready_tx.send(Err(format!("setns: {}", std::io::Error::last_os_error())));
            return;
        }
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("bind in namespace: {e}")));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        for conn in listener.incoming().flatten() {
            if conn_tx.send(conn).is_err() {
                return;
            }
        }
    });
    // Connections to the real server are opened from a thread of the host namespace.
    std::thread::spawn(move || {
        for inner in conn_rx {
            let Ok(outer) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (Ok(inner2), Ok(outer2)) = (inner.try_clone(), outer.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || pipe(inner, outer2));
            std::thread::spawn(move || pipe(outer, inner2));
        }
    });
    ready_rx
        .recv()
        .expect("forwarder thread")
        .expect("forwarding the API server port into the namespace");
}

fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
