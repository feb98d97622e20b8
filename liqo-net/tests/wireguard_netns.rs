//! Data-plane test of the WireGuard backend: two endpoints in throwaway network namespaces,
//! joined by a veth pair, exchange encrypted traffic through the tunnel.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` and `/dev/net/tun`. Without them it
//! is skipped, unless the environment variable `CI` is set: then it fails. `ping` is used when
//! installed; the traffic check itself is a TCP exchange made from inside the namespaces.
//! The implementation is `auto` unless `LIQO_WG_IMPLEMENTATION` says `kernel` or `userspace`.
//!
//! Every namespace is removed when its guard is dropped, also when the test panics. Manual
//! cleanup, should the test process be killed:
//! `ip netns list | grep liqo-test- | cut -d' ' -f1 | xargs -rn1 ip netns del` and
//! `rm -f /var/run/wireguard/liqo-wg*.sock`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use liqo_net::tunnel::{InterfaceSpec, KeyPair, PeerSpec, TunnelStatus};
use liqo_net::wireguard::{
    Implementation, UAPI_SOCKET_DIR, WireGuardBackend, kernel_module_available, uapi_socket_path,
};
use liqo_net::{Error, TunnelBackend};
use tokio::runtime::Runtime;

mod support;
use support::{Netns, requirements_met, run, succeeds};

/// Moves the calling thread into the network namespace `name` (`/run/netns/<name>`); the
/// threads it spawns afterwards start there too.
#[allow(unsafe_code)]
fn enter_netns(name: &str) {
    let file = File::open(format!("/run/netns/{name}")).unwrap();
    // SAFETY: `setns` takes a file descriptor and a flag: `file` keeps the descriptor open
    // for the whole call, and the call only changes the network namespace of this thread,
    // which holds no socket or other state tied to the namespace it leaves.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

type Job = Box<dyn FnOnce(&Runtime) + Send>;

/// A thread inside a network namespace, with a current-thread tokio runtime (whose blocking
/// threads it spawns, hence also in the namespace), running the jobs it is sent.
struct NsThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsThread {
    fn new(ns: &Netns) -> Self {
        let name = ns.name.clone();
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            enter_netns(&name);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for job in rx {
                job(&rt);
            }
        });
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Runs `f` on the thread and returns its result.
    fn run<T: Send + 'static>(&self, f: impl FnOnce(&Runtime) -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move |rt| {
                let _ = tx.send(f(rt));
            }))
            .expect("namespace thread gone");
        rx.recv()
            .expect("namespace thread panicked (see its message above)")
    }

    /// Runs `fut` to completion on the thread's runtime.
    fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run(move |rt| rt.block_on(fut))
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One tunnel endpoint: a backend living in its own namespace.
struct Side {
    ns_name: String,
    thread: NsThread,
    backend: Arc<WireGuardBackend>,
    link: String,
}

impl Side {
    fn new(ns: &Netns, implementation: Implementation, link: String) -> Self {
        let thread = NsThread::new(ns);
        let backend = Arc::new(thread.run(move |_| WireGuardBackend::new(implementation)));
        Self {
            ns_name: ns.name.clone(),
            thread,
            backend,
            link,
        }
    }

    fn keys(&self) -> KeyPair {
        let b = Arc::clone(&self.backend);
        self.thread
            .block_on(async move { b.generate_keys().await })
            .unwrap()
    }

    fn ensure(&self, spec: &InterfaceSpec) -> Result<(), Error> {
        let (b, spec) = (Arc::clone(&self.backend), spec.clone());
        self.thread
            .block_on(async move { b.ensure_interface(&spec).await })
    }

    fn upsert(&self, peer: &PeerSpec) {
        let (b, peer) = (Arc::clone(&self.backend), peer.clone());
        self.thread
            .block_on(async move { b.upsert_peer(&peer).await })
            .unwrap();
    }

    fn remove_peer(&self, key: liqo_net::tunnel::PublicKey) {
        let b = Arc::clone(&self.backend);
        self.thread
            .block_on(async move { b.remove_peer(&key).await })
            .unwrap();
    }

    fn status(&self) -> TunnelStatus {
        let b = Arc::clone(&self.backend);
        self.thread
            .block_on(async move { b.status().await })
            .unwrap()
    }

    fn teardown(&self) {
        let b = Arc::clone(&self.backend);
        self.thread
            .block_on(async move { b.teardown().await })
            .unwrap();
    }

    fn userspace(&self) -> bool {
        self.backend.implementation() == Implementation::Userspace
    }
}

fn implementation_under_test() -> Implementation {
    std::env::var("LIQO_WG_IMPLEMENTATION")
        .ok()
        .map_or(Implementation::Auto, |s| s.parse().unwrap())
}

/// Sends a line from `from` to `to`'s TCP server at `addr` and checks the echo: the proof
/// that packets cross the tunnel both ways.
fn tcp_echo(from: &Side, to: &Side, addr: SocketAddr) {
    let listener: TcpListener = to.thread.run(move |_| TcpListener::bind(addr).unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 64];
        let n = conn.read(&mut buf).unwrap();
        conn.write_all(&buf[..n]).unwrap();
    });
    let echoed = from.thread.run(move |_| {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(15)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"hello through wireguard").unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).unwrap();
        buf
    });
    server.join().unwrap();
    assert_eq!(echoed, b"hello through wireguard");
}

/// The signals blocked in the calling thread (`SigBlk` of `/proc/thread-self/status`).
fn blocked_signals() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
    u64::from_str_radix(line["SigBlk:".len()..].trim(), 16).unwrap()
}

#[test]
fn wireguard_tunnel_carries_encrypted_traffic_between_namespaces() {
    if !requirements_met(
        "wireguard_tunnel_carries_encrypted_traffic_between_namespaces",
        &["ip"],
        &["/dev/net/tun"],
    ) {
        return;
    }
    let a = Netns::new("wg-a");
    let b = Netns::new("wg-b");
    let names = [a.name.clone(), b.name.clone()];

    scenario(&a, &b);

    drop(a);
    drop(b);
    let listed = run(Command::new("ip").args(["netns", "list"]));
    for name in names {
        assert!(!listed.contains(&name), "{name} left behind:\n{listed}");
    }
}

fn scenario(a: &Netns, b: &Netns) {
    // Underlay: a veth pair, 192.168.99.1 <-> 192.168.99.2.
    a.ip(&[
        "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", &b.name,
    ]);
    a.ip(&["addr", "add", "192.168.99.1/24", "dev", "veth-a"]);
    b.ip(&["addr", "add", "192.168.99.2/24", "dev", "veth-b"]);
    a.ip(&["link", "set", "veth-a", "up"]);
    b.ip(&["link", "set", "veth-b", "up"]);

    // UAPI sockets live in a directory shared by all namespaces: one name per side.
    let pid = std::process::id() % 10_000;
    let implementation = implementation_under_test();
    let side_a = Side::new(a, implementation, format!("liqo-wg{pid}a"));
    let side_b = Side::new(b, implementation, format!("liqo-wg{pid}b"));
    eprintln!("WireGuard implementation: {}", side_a.backend.name());

    // Forcing the kernel implementation where the module is missing fails cleanly.
    if !kernel_module_available() {
        let kernel = Side::new(a, Implementation::Kernel, format!("liqo-wg{pid}k"));
        let keys = kernel.keys();
        let spec = InterfaceSpec::new("10.98.0.1/30".parse().unwrap(), keys.private)
            .with_name(kernel.link.clone());
        let err = kernel.ensure(&spec).unwrap_err();
        assert!(matches!(err, Error::WireGuard { .. }), "{err:?}");
        assert!(!a.has_link(&kernel.link));
    }

    let keys_a = side_a.keys();
    let keys_b = side_b.keys();
    assert_ne!(keys_a.public, keys_b.public);
    let spec_a = InterfaceSpec::new("10.99.0.1/30".parse().unwrap(), keys_a.private.clone())
        .with_name(side_a.link.clone());
    let spec_b = InterfaceSpec::new("10.99.0.2/30".parse().unwrap(), keys_b.private.clone())
        .with_name(side_b.link.clone());

    let sock_a = uapi_socket_path(&side_a.link);
    let sock_b = uapi_socket_path(&side_b.link);
    if side_a.userspace() {
        std::fs::create_dir_all(UAPI_SOCKET_DIR).unwrap();
        // A stale socket, as a killed gateway leaves it: removed at start.
        drop(UnixListener::bind(&sock_a).unwrap());
        assert!(sock_a.exists());
        // A socket someone answers on: not stolen.
        let busy = UnixListener::bind(&sock_b).unwrap();
        let err = side_b.ensure(&spec_b).unwrap_err();
        assert!(matches!(err, Error::InterfaceBusy { .. }), "{err:?}");
        assert!(!b.has_link(&side_b.link));
        drop(busy); // now stale too
    }

    // Idempotent creation.
    side_a.ensure(&spec_a).unwrap();
    side_a.ensure(&spec_a).unwrap();
    side_b.ensure(&spec_b).unwrap();
    side_b.ensure(&spec_b).unwrap();
    if side_a.userspace() {
        assert!(UnixStream::connect(&sock_a).is_ok(), "no live socket for a");
        assert!(UnixStream::connect(&sock_b).is_ok(), "no live socket for b");
    }
    // boringtun blocks SIGINT and SIGTERM in the thread creating its device: neither the
    // runtime's thread nor its blocking threads (one of which asked for the creation) may
    // inherit that mask, or the signals would never reach the gateway's handlers.
    for side in [&side_a, &side_b] {
        let (runtime_mask, blocking_mask) = side.thread.run(|rt| {
            let blocking =
                rt.block_on(async { tokio::task::spawn_blocking(blocked_signals).await });
            (blocked_signals(), blocking.unwrap())
        });
        const SIGINT_SIGTERM: u64 = (1 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1));
        assert_eq!(runtime_mask & SIGINT_SIGTERM, 0, "{runtime_mask:#x}");
        assert_eq!(blocking_mask & SIGINT_SIGTERM, 0, "{blocking_mask:#x}");
    }

    let link = a.ip(&["-o", "link", "show", &side_a.link]);
    assert!(link.contains("mtu 1340"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    let addr = a.ip(&["-o", "addr", "show", "dev", &side_a.link]);
    assert!(addr.contains("inet 10.99.0.1/30"), "{addr}");
    let addr = b.ip(&["-o", "addr", "show", "dev", &side_b.link]);
    assert!(addr.contains("inet 10.99.0.2/30"), "{addr}");

    // Peers: each other's key, underlay endpoint and tunnel address.
    let peer_b = PeerSpec::new(keys_b.public)
        .with_endpoint("192.168.99.2:51840".parse().unwrap())
        .with_allowed_ips(["10.99.0.2/32".parse().unwrap()]);
    let peer_a = PeerSpec::new(keys_a.public)
        .with_endpoint("192.168.99.1:51840".parse().unwrap())
        .with_allowed_ips(["10.99.0.1/32".parse().unwrap()]);
    side_a.upsert(&peer_b);
    side_a.upsert(&peer_b);
    side_b.upsert(&peer_a);
    let before = side_a.status();
    assert_eq!(before.interface.as_deref(), Some(side_a.link.as_str()));
    let p = before.peer(&keys_b.public).expect("peer b configured on a");
    assert_eq!(p.endpoint, peer_b.endpoint);
    assert_eq!(p.last_handshake, None);

    // Traffic crosses the tunnel.
    tcp_echo(&side_a, &side_b, "10.99.0.2:7000".parse().unwrap());
    tcp_echo(&side_b, &side_a, "10.99.0.1:7001".parse().unwrap());
    if succeeds(Command::new("ping").arg("-V")) {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &side_a.ns_name,
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            "10.99.0.2",
        ]));
    } else {
        eprintln!("`ping` not installed: the TCP exchange above is the traffic check");
    }

    let now = SystemTime::now();
    for (side, key) in [(&side_a, keys_b.public), (&side_b, keys_a.public)] {
        let status = side.status();
        let peer = status.peer(&key).expect("peer still configured");
        assert!(
            peer.handshake_within(now, Duration::from_secs(180)),
            "{peer:?}"
        );
        assert!(peer.rx_bytes > 0 && peer.tx_bytes > 0, "{peer:?}");
    }

    // Changing a live peer (boringtun cannot modify one in place) keeps traffic flowing.
    side_a.upsert(
        &peer_b
            .clone()
            .with_persistent_keepalive(Some(Duration::from_secs(10))),
    );
    tcp_echo(&side_a, &side_b, "10.99.0.2:7002".parse().unwrap());

    // Applying the same interface spec again keeps the peer and its counters (a recreated
    // peer would start from zero). boringtun derives the handshake time from a monotonic
    // clock, so it moves by microseconds between two reads.
    let before = side_a.status().peer(&keys_b.public).unwrap().clone();
    side_a.ensure(&spec_a).unwrap();
    let after = side_a.status().peer(&keys_b.public).unwrap().clone();
    assert!(after.tx_bytes >= before.tx_bytes && after.rx_bytes >= before.rx_bytes);
    let (t0, t1) = (
        before.last_handshake.unwrap(),
        after.last_handshake.unwrap(),
    );
    let drift = t1.duration_since(t0).unwrap_or_else(|e| e.duration());
    assert!(drift < Duration::from_secs(1), "{before:?} {after:?}");

    // Removing a peer, twice.
    side_a.remove_peer(keys_b.public);
    side_a.remove_peer(keys_b.public);
    assert!(side_a.status().peers.is_empty());

    // Teardown, twice: no interface and no socket left.
    for side in [&side_a, &side_b] {
        side.teardown();
        side.teardown();
        assert_eq!(side.status(), TunnelStatus::default());
    }
    assert!(
        !a.has_link(&side_a.link),
        "{} left in {}",
        side_a.link,
        a.name
    );
    assert!(
        !b.has_link(&side_b.link),
        "{} left in {}",
        side_b.link,
        b.name
    );
    assert!(!sock_a.exists(), "{} left behind", sock_a.display());
    assert!(!sock_b.exists(), "{} left behind", sock_b.display());
}
