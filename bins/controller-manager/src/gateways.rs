//! Gateways started by the system where there is no kubelet to run gateway pods (the
//! playground, the tests): for each GatewayServer and GatewayClient of this cluster, a
//! `liqo-gateway` process in a network namespace of its own, through the same [`Launcher`]
//! seam as the virtual kubelets.
//!
//! [`NetnsLauncher`] gives each gateway a namespace `liqo-gw-<hash>` plugged into the host
//! bridge `liqo-gw-br` (198.18.0.0/16: the gateways of every cluster on the host reach each
//! other there, as over the internet), with the API server's loopback port forwarded into it,
//! and runs the gateway there. Stopping a gateway sends it SIGTERM (it removes its data
//! plane), then deletes the namespace. A gateway never outlives the controller-manager, and
//! namespaces left by a killed one are replaced when it starts again.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::networking::v1beta1::{GatewayClient, GatewayServer};
use liqo_core::ids::ClusterId;
use liqo_core::labels::core::REMOTE_CLUSTER_ID;
use liqo_reflect::virtual_kubelet::launcher::{LaunchSpec, Launcher};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The host bridge the gateways' namespaces are plugged into.
pub(crate) const BRIDGE: &str = "liqo-gw-br";
/// The host's address on [`BRIDGE`] (the gateways' default route).
const BRIDGE_ADDRESS: &str = "198.18.255.254";

/// A stable 32-bit FNV-1a hash, for names and addresses derived from a gateway's key.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Names and address of one gateway's sandbox (pure): the namespace, the host end of its
/// link, its address on the bridge and its tunnel interface (unique on the host: the
/// userspace WireGuard socket is named after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sandbox {
    pub(crate) netns: String,
    pub(crate) host_link: String,
    pub(crate) address: String,
    pub(crate) tunnel: String,
}

impl Sandbox {
    pub(crate) fn for_key(key: &str) -> Self {
        let h = fnv(key);
        // 198.18.0.1 .. 198.18.254.253: never the bridge's 198.18.255.254.
        let (a, b) = ((h >> 8) % 255, (h % 253) + 1);
        Self {
            netns: format!("liqo-gw-{h:08x}"),
            host_link: format!("lgw{h:08x}"),
            address: format!("198.18.{a}.{b}"),
            tunnel: format!("liqo{:08x}", h),
        }
    }
}

/// The gateway launch of one GatewayServer or GatewayClient (pure): the key (unique on the
/// host: it includes this cluster's id) and the `liqo-gateway` arguments.
pub(crate) fn gateway_spec(
    local: &ClusterId,
    mode: &str,
    namespace: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> LaunchSpec {
    let key = format!("{local}/{mode}/{namespace}/{name}");
    let remote = labels
        .get(REMOTE_CLUSTER_ID)
        .cloned()
        .unwrap_or_else(|| name.to_owned());
    let sandbox = Sandbox::for_key(&key);
    LaunchSpec {
        args: [
            "--mode",
            mode,
            "--name",
            name,
            "--namespace",
            namespace,
            "--remote-cluster-id",
            &remote,
            "--tunnel-interface",
            &sandbox.tunnel,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        key,
        token: None,
    }
}

async fn ip(args: &[&str]) -> liqo_reflect::Result<String> {
    liqo_net::sys::ip(args)
        .await
        .map_err(|e| liqo_reflect::Error::InvalidConfig(e.to_string()))
}

struct Running {
    args: Vec<String>,
    child: Child,
    forwarder: Option<JoinHandle<()>>,
}

/// Runs each gateway as a child process in its own network namespace (see the
/// [module](self) documentation).
pub(crate) struct NetnsLauncher {
    program: PathBuf,
    base_args: Vec<String>,
    /// The API server's loopback port, forwarded into each namespace.
    api_port: Option<u16>,
    log_dir: Option<PathBuf>,
    running: Mutex<HashMap<String, Running>>,
}

impl NetnsLauncher {
    pub(crate) fn new(
        program: PathBuf,
        base_args: Vec<String>,
        api_port: Option<u16>,
        log_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            program,
            base_args,
            api_port,
            log_dir,
            running: Mutex::default(),
        }
    }

    /// The namespace of `sandbox`, created afresh (a stale one is removed first).
    async fn prepare(&self, sandbox: &Sandbox) -> liqo_reflect::Result<Option<JoinHandle<()>>> {
        if ip(&["link", "show", BRIDGE]).await.is_err() {
            ip(&["link", "add", BRIDGE, "type", "bridge"]).await?;
        }
        ip(&[
            "addr",
            "replace",
            &format!("{BRIDGE_ADDRESS}/16"),
            "dev",
            BRIDGE,
        ])
        .await?;
        ip(&["link", "set", BRIDGE, "up"]).await?;
        let _ = ip(&["netns", "del", &sandbox.netns]).await;
        let _ = ip(&["link", "del", &sandbox.host_link]).await;
        let ns = sandbox.netns.as_str();
        ip(&["netns", "add", ns]).await?;
        ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
        ip(&[
            "link",
            "add",
            &sandbox.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "wan",
            "netns",
            ns,
        ])
        .await?;
        ip(&["link", "set", &sandbox.host_link, "master", BRIDGE, "up"]).await?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/16", sandbox.address),
            "dev",
            "wan",
        ])
        .await?;
        ip(&["-n", ns, "link", "set", "wan", "up"]).await?;
        ip(&["-n", ns, "route", "add", "default", "via", BRIDGE_ADDRESS]).await?;
        match self.api_port {
            Some(port) => Ok(Some(forward_port_into(ns, port).await?)),
            None => Ok(None),
        }
    }

    fn spawn(&self, spec: &LaunchSpec, sandbox: &Sandbox) -> liqo_reflect::Result<Child> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &sandbox.netns])
            .arg(&self.program)
            .args(&self.base_args)
            .args(&spec.args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // `ip netns exec` execs the gateway: the signal stays armed, so a gateway never
        // outlives this process (it gets SIGTERM and removes its data plane).
        #[allow(unsafe_code)]
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and only affects the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if let Some(dir) = &self.log_dir {
            let io = |e: std::io::Error| {
                liqo_reflect::Error::InvalidConfig(format!("log directory {}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            let path = dir.join(format!("gateway-{}.log", spec.key.replace('/', "_")));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            let err = file.try_clone().map_err(io)?;
            command.stdout(file).stderr(err);
        }
        command.spawn().map_err(|e| {
            liqo_reflect::Error::InvalidConfig(format!(
                "cannot run the gateway {}: {e}",
                self.program.display()
            ))
        })
    }

    /// Stops every gateway (at shutdown).
    pub(crate) async fn stop_all(&self) {
        let keys: Vec<String> = self.running.lock().await.keys().cloned().collect();
        for key in keys {
            let _ = self.stop(&key).await;
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

#[async_trait]
impl Launcher for NetnsLauncher {
    async fn ensure(&self, spec: &LaunchSpec) -> liqo_reflect::Result<bool> {
        let mut running = self.running.lock().await;
        if let Some(current) = running.get_mut(&spec.key) {
            match current.child.try_wait() {
                Ok(None) if current.args == spec.args => return Ok(false),
                Ok(None) => info!(key = %spec.key, "arguments changed: restarting the gateway"),
                Ok(Some(status)) => {
                    warn!(key = %spec.key, %status, "the gateway exited: restarting it");
                }
                Err(e) => warn!(key = %spec.key, error = %e, "cannot check the gateway"),
            }
            if let Some(mut old) = running.remove(&spec.key) {
                terminate(&mut old.child, Duration::from_secs(10)).await;
                if let Some(f) = old.forwarder {
                    f.abort();
                }
            }
        }
        let sandbox = Sandbox::for_key(&spec.key);
        let forwarder = self.prepare(&sandbox).await?;
        let child = self.spawn(spec, &sandbox)?;
        info!(key = %spec.key, netns = %sandbox.netns, address = %sandbox.address,
            pid = ?child.id(), "gateway started");
        running.insert(
            spec.key.clone(),
            Running {
                args: spec.args.clone(),
                child,
                forwarder,
            },
        );
        Ok(true)
    }

    async fn stop(&self, key: &str) -> liqo_reflect::Result<()> {
        let Some(mut gone) = self.running.lock().await.remove(key) else {
            return Ok(());
        };
        terminate(&mut gone.child, Duration::from_secs(10)).await;
        if let Some(f) = gone.forwarder {
            f.abort();
        }
        let sandbox = Sandbox::for_key(key);
        let _ = ip(&["netns", "del", &sandbox.netns]).await;
        let _ = ip(&["link", "del", &sandbox.host_link]).await;
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", sandbox.tunnel));
        // The last gateway on the host takes the bridge with it (a gateway being set up by
        // another controller-manager meanwhile fails its setup and is retried).
        if ip(&["link", "show", "master", BRIDGE])
            .await
            .is_ok_and(|ports| ports.trim().is_empty())
        {
            let _ = ip(&["link", "del", BRIDGE]).await;
        }
        info!(%key, "gateway stopped");
        Ok(())
    }
}

/// Makes the host's loopback `port` (the API server) reachable on 127.0.0.1 inside network
/// namespace `netns`: a listener created there by a short-lived thread that entered the
/// namespace, and connections opened from this process's own namespace.
async fn forward_port_into(netns: &str, port: u16) -> liqo_reflect::Result<JoinHandle<()>> {
    use std::os::fd::AsRawFd as _;
    let path = format!("/var/run/netns/{netns}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A dedicated thread (not the runtime's pool, whose threads are reused): it enters the
    // namespace, binds, and ends.
    std::thread::spawn(move || {
        let result = (|| {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            #[allow(unsafe_code)]
            // SAFETY: setns(2) moves only this thread, which ends right after binding.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            let listener = std::net::TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| format!("binding 127.0.0.1:{port} in {path}: {e}"))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| format!("{path}: {e}"))?;
            Ok(listener)
        })();
        let _ = tx.send(result);
    });
    let listener = rx
        .await
        .map_err(|_| liqo_reflect::Error::InvalidConfig("port forwarder thread died".into()))?
        .map_err(liqo_reflect::Error::InvalidConfig)?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| liqo_reflect::Error::InvalidConfig(e.to_string()))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut inner, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut outer) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inner, &mut outer).await;
                }
            });
        }
    }))
}

/// Starts and stops gateways as GatewayServers and GatewayClients come and go, until
/// `shutdown`; then stops them all.
pub(crate) async fn run(
    client: kube::Client,
    local: ClusterId,
    launcher: Arc<NetnsLauncher>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (servers, server_writer) = reflector::store::<GatewayServer>();
    let (clients, client_writer) = reflector::store::<GatewayClient>();
    let server_events = reflector::reflector(
        server_writer,
        liqo_core::runtime::retrying(watcher(
            Api::<GatewayServer>::all(client.clone()),
            watcher::Config::default(),
        )),
    )
    .touched_objects()
    .map(|_| ());
    let client_events = reflector::reflector(
        client_writer,
        liqo_core::runtime::retrying(watcher(
            Api::<GatewayClient>::all(client),
            watcher::Config::default(),
        )),
    )
    .touched_objects()
    .map(|_| ());
    let mut events = std::pin::pin!(futures::stream::select(server_events, client_events));
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = events.next() => {}
            _ = tick.tick() => {}
        }
        let mut wanted: HashMap<String, LaunchSpec> = HashMap::new();
        for s in servers.state() {
            if s.metadata.deletion_timestamp.is_none() {
                let spec = gateway_spec(
                    &local,
                    "server",
                    &s.namespace().unwrap_or_default(),
                    &s.name_any(),
                    s.labels(),
                );
                wanted.insert(spec.key.clone(), spec);
            }
        }
        for c in clients.state() {
            if c.metadata.deletion_timestamp.is_none() {
                let spec = gateway_spec(
                    &local,
                    "client",
                    &c.namespace().unwrap_or_default(),
                    &c.name_any(),
                    c.labels(),
                );
                wanted.insert(spec.key.clone(), spec);
            }
        }
        for spec in wanted.values() {
            if let Err(e) = launcher.ensure(spec).await {
                warn!(key = %spec.key, error = %e, "cannot start the gateway");
            }
        }
        let running: Vec<String> = launcher.running.lock().await.keys().cloned().collect();
        for key in running.into_iter().filter(|k| !wanted.contains_key(k)) {
            let _ = launcher.stop(&key).await;
        }
    }
    launcher.stop_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_are_stable_distinct_and_fit_interface_names() {
        let a = Sandbox::for_key("rome/client/liqo-tenant-milan/milan");
        assert_eq!(a, Sandbox::for_key("rome/client/liqo-tenant-milan/milan"));
        let b = Sandbox::for_key("naples/client/liqo-tenant-milan/milan");
        assert_ne!(a.netns, b.netns);
        for name in [&a.host_link, &a.tunnel] {
            assert!(name.len() <= 15, "{name} is too long for an interface");
        }
        assert_ne!(a.address, BRIDGE_ADDRESS);
    }

    #[test]
    fn specs_name_the_peer_and_a_unique_tunnel() {
        let labels = BTreeMap::from([(REMOTE_CLUSTER_ID.to_owned(), "milan".to_owned())]);
        let spec = gateway_spec(
            &"rome".parse().unwrap(),
            "client",
            "liqo-tenant-milan",
            "milan",
            &labels,
        );
        assert_eq!(spec.key, "rome/client/liqo-tenant-milan/milan");
        let args = spec.args.join(" ");
        assert!(
            args.contains(
                "--mode client --name milan --namespace liqo-tenant-milan --remote-cluster-id milan"
            ),
            "{args}"
        );
        assert!(args.contains(&Sandbox::for_key(&spec.key).tunnel));
    }
}
