//! Real nodes: a real kubelet with its own containerd, bridge CNI, kube-proxy and cgroup root,
//! in a network namespace of its own (see `docs/development.md` and the measured facts behind
//! the choices in the repository's reference notes).
//!
//! Every real node of every cluster on the host has its `eth0` on the host bridge
//! [`UNDERLAY_BRIDGE`] (172.31.0.0/16, the host is [`UNDERLAY_HOST`]): nodes reach the host
//! (the API servers listen there) and each other's node addresses, like machines of one
//! datacenter, but no pod or service address of another cluster (nothing routes them, and the
//! host does not forward). Pod traffic leaving the node is masqueraded to the node address.
//!
//! Node processes run under `nsenter --net` (not `ip netns exec`, which remounts `/sys` and
//! hides the cgroup file system). Everything a node writes lives under its directory, but for
//! what the kubelet hard-codes (`/var/log/containers` links, host sysctls it changes), which
//! [`RealNode::stop`] puts back.

// Starting and stopping a node is synchronous (processes, files, `ip`): it runs under
// `block_in_place` when a cluster starts and in `Drop` when it stops, never on a bare
// runtime thread.
#![allow(clippy::disallowed_methods)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use tracing::{debug, info, warn};

use crate::process::{Process, Spec};
use crate::{Error, Result};

/// The label of real nodes (its value: the cluster name); kwok nodes carry
/// [`CLUSTER_LABEL`](crate::CLUSTER_LABEL) instead.
pub const REAL_NODE_LABEL: &str = "testenv.liqo.io/real-node";

/// The host bridge every real node is plugged into.
pub const UNDERLAY_BRIDGE: &str = "lt-underlay";
/// The host's address on [`UNDERLAY_BRIDGE`]: where nodes reach the API servers.
pub const UNDERLAY_HOST: Ipv4Addr = Ipv4Addr::new(172, 31, 255, 254);
/// Prefix length of the underlay.
const UNDERLAY_PREFIX: u8 = 16;
/// Prefix of the network namespaces of real nodes.
const NETNS_PREFIX: &str = "ltn-";
/// The host sysctls the kubelet changes, restored when the last node stops.
const KUBELET_SYSCTLS: [&str; 3] = [
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
];

/// Serializes address allocation and the saved sysctls within the process.
static HOST: Mutex<HostState> = Mutex::new(HostState {
    nodes: 0,
    sysctls: Vec::new(),
});

struct HostState {
    nodes: usize,
    sysctls: Vec<(String, String)>,
}

fn host() -> std::sync::MutexGuard<'static, HostState> {
    match HOST.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Runs a command to completion; its stderr in the error.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(Error::io(format!("running {program} (is it installed?)")))?;
    if !out.status.success() {
        return Err(Error::InvalidConfig(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// What a real node needs to start.
#[derive(Debug, Clone)]
pub(crate) struct NodeParams {
    /// Node name.
    pub(crate) name: String,
    /// The cluster's name (label, cgroup root).
    pub(crate) cluster: String,
    /// The node's directory (everything it writes).
    pub(crate) dir: PathBuf,
    /// The node's pod subnet.
    pub(crate) pod_cidr: Ipv4Network,
    /// The cluster's pod CIDR (kube-proxy).
    pub(crate) cluster_cidr: Ipv4Network,
    /// The cluster DNS address.
    pub(crate) dns_ip: Ipv4Addr,
    /// Directory of kubelet, kube-proxy, ...
    pub(crate) bin_dir: PathBuf,
    /// Image archives to import into the node's containerd.
    pub(crate) images: Vec<PathBuf>,
    /// The pause image reference.
    pub(crate) pause_image: String,
    /// Kubeconfig of the kubelet (node identity), and its serving certificate and key, and
    /// the cluster CA (PEM files).
    pub(crate) kubelet_kubeconfig: PathBuf,
    pub(crate) kubelet_cert: PathBuf,
    pub(crate) kubelet_key: PathBuf,
    pub(crate) ca_file: PathBuf,
    /// Kubeconfig of kube-proxy.
    pub(crate) proxy_kubeconfig: PathBuf,
    /// The node's address on the underlay, its network namespace and the host end of its link.
    pub(crate) ip: Ipv4Addr,
    pub(crate) netns: String,
    pub(crate) host_link: String,
}

/// A running real node (see the [module](self) documentation).
#[derive(Debug)]
pub(crate) struct RealNode {
    pub(crate) name: String,
    pub(crate) ip: Ipv4Addr,
    pod_cidr: Ipv4Network,
    netns: String,
    host_link: String,
    dir: PathBuf,
    cgroup_root: String,
    processes: Vec<Process>,
}

/// Where the containerd of the node whose directory is `dir` listens: a short path under
/// `/run/liqo-testenv` (containerd refuses socket paths over 104 bytes, and node directories
/// can be deep), removed with the node (pure).
pub(crate) fn socket_dir(dir: &Path) -> PathBuf {
    let h = fnv(&dir.display().to_string());
    PathBuf::from(format!("/run/liqo-testenv/n-{h:08x}"))
}

/// The network namespace and host link names of the node whose directory is `dir` (pure).
fn names_for(dir: &Path) -> (String, String) {
    let h = fnv(&dir.display().to_string());
    (format!("{NETNS_PREFIX}{h:08x}"), format!("ltn{h:08x}"))
}

/// The node address and namespace names of the node whose directory is `dir` (the address
/// not used by another node of the host).
pub(crate) fn allocate(dir: &Path) -> Result<(Ipv4Addr, String, String)> {
    let h = fnv(&dir.display().to_string());
    let (netns, host_link) = names_for(dir);
    let used = used_addresses();
    for i in 0..65_000_u32 {
        let n = (h.wrapping_add(i)) % 65_000 + 1;
        #[allow(clippy::cast_possible_truncation)]
        let ip = Ipv4Addr::new(172, 31, (n >> 8) as u8, (n & 0xff) as u8);
        if ip != UNDERLAY_HOST && (n & 0xff) != 0 && (n & 0xff) != 255 && !used.contains(&ip) {
            return Ok((ip, netns, host_link));
        }
    }
    Err(Error::InvalidConfig(
        "no free address on the real-node underlay (172.31.0.0/16)".to_owned(),
    ))
}

/// Addresses of the real nodes of the host.
fn used_addresses() -> Vec<Ipv4Addr> {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return Vec::new();
    };
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .filter_map(|n| run("ip", &["-n", n, "-4", "-o", "addr", "show", "dev", "eth0"]).ok())
        .filter_map(|out| {
            let addr = out.split_whitespace().nth(3)?;
            addr.split('/').next()?.parse().ok()
        })
        .collect()
}

/// The host bridge, created once.
fn ensure_underlay() -> Result<()> {
    if run("ip", &["link", "show", UNDERLAY_BRIDGE]).is_err() {
        run("ip", &["link", "add", UNDERLAY_BRIDGE, "type", "bridge"])?;
    }
    run(
        "ip",
        &[
            "addr",
            "replace",
            &format!("{UNDERLAY_HOST}/{UNDERLAY_PREFIX}"),
            "dev",
            UNDERLAY_BRIDGE,
        ],
    )?;
    run("ip", &["link", "set", UNDERLAY_BRIDGE, "up"])?;
    Ok(())
}

/// The cgroup v1 hierarchies of the host (each a directory of /sys/fs/cgroup with a
/// `tasks` file), or `None` on a cgroup v2 host.
fn cgroup_v1_hierarchies() -> Option<Vec<PathBuf>> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return None;
    }
    let entries = std::fs::read_dir("/sys/fs/cgroup").ok()?;
    Some(
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("tasks").exists() && !p.is_symlink())
            .collect(),
    )
}

/// Where the host's values of [`KUBELET_SYSCTLS`] are kept while real nodes run, so that a
/// process that was killed before restoring them does not make its successor record the
/// kubelet's values as the host's.
const SYSCTL_FILE: &str = "/run/liqo-testenv/sysctls";

/// The host's values of the sysctls the kubelet changes: from [`SYSCTL_FILE`] if a previous
/// owner recorded them, else read now and recorded.
fn saved_sysctls() -> Vec<(String, String)> {
    if let Ok(text) = std::fs::read_to_string(SYSCTL_FILE) {
        let saved: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect();
        if !saved.is_empty() {
            return saved;
        }
    }
    let now: Vec<(String, String)> = KUBELET_SYSCTLS
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), read_sysctl(k)?)))
        .collect();
    let text: String = now.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let _ = std::fs::create_dir_all("/run/liqo-testenv");
    let _ = std::fs::write(SYSCTL_FILE, text);
    now
}

fn read_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .ok()
        .map(|v| v.trim().to_owned())
}

impl RealNode {
    /// Starts the node: network, cgroups, containerd (with the images), kubelet and
    /// kube-proxy. Waiting for Ready is the caller's (it has the API client).
    pub(crate) fn launch(params: &NodeParams) -> Result<Self> {
        let (ip, netns, host_link) = (params.ip, params.netns.clone(), params.host_link.clone());
        let dir = params.dir.clone();
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        {
            let mut h = host();
            if h.nodes == 0 && h.sysctls.is_empty() {
                h.sysctls = saved_sysctls();
            }
            h.nodes += 1;
        }
        let mut node = Self {
            name: params.name.clone(),
            ip,
            pod_cidr: params.pod_cidr,
            netns,
            host_link,
            dir: dir.clone(),
            cgroup_root: format!("liqo-testenv-{}", params.name),
            processes: Vec::new(),
        };
        if let Err(e) = node.start_inner(params) {
            node.stop();
            return Err(e);
        }
        Ok(node)
    }

    fn start_inner(&mut self, params: &NodeParams) -> Result<()> {
        // Leftovers of a previous run of the same node (a killed test process).
        self.remove_network();
        ensure_underlay()?;
        let ns = self.netns.clone();
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link",
                "add",
                &self.host_link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ],
        )?;
        run(
            "ip",
            &[
                "link",
                "set",
                &self.host_link,
                "master",
                UNDERLAY_BRIDGE,
                "up",
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/{UNDERLAY_PREFIX}", self.ip),
                "dev",
                "eth0",
            ],
        )?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run(
            "ip",
            &[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &UNDERLAY_HOST.to_string(),
            ],
        )?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        // Pods leaving the node (to the API server, other nodes) look like the node.
        let masquerade = format!(
            "table ip liqo-testenv-node {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {} oifname \"eth0\" masquerade\n  }}\n}}\n",
            params.pod_cidr
        );
        let rules = self.dir.join("node.nft");
        std::fs::write(&rules, masquerade).map_err(Error::io("writing the node's nft rules"))?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "nft",
                "-f",
                &rules.display().to_string(),
            ],
        )?;

        self.make_cgroups()?;
        let dir = self.dir.clone();
        let d = |p: &str| dir.join(p);
        for sub in [
            "containerd",
            "cni/net.d",
            "cni/ipam",
            "kubelet",
            "pod-logs",
            "manifests",
            "runc",
        ] {
            std::fs::create_dir_all(d(sub)).map_err(Error::io(format!("creating {sub}")))?;
        }
        let sock_dir = socket_dir(&dir);
        std::fs::create_dir_all(&sock_dir)
            .map_err(Error::io(format!("creating {}", sock_dir.display())))?;
        let sock = sock_dir.join("containerd.sock");
        std::fs::write(
            d("containerd/config.toml"),
            containerd_config(&self.dir, &params.pause_image),
        )
        .map_err(Error::io("writing the containerd configuration"))?;
        std::fs::write(
            d("cni/net.d/10-liqo-testenv.conflist"),
            cni_config(&params.cluster, &self.dir, params.pod_cidr),
        )
        .map_err(Error::io("writing the CNI configuration"))?;
        self.spawn(
            "containerd",
            Path::new("containerd"),
            vec![
                "--config".into(),
                d("containerd/config.toml").display().to_string(),
            ],
        )?;
        wait_until(Duration::from_secs(30), "containerd's socket", || {
            sock.exists()
        })?;
        let address = sock.display().to_string();
        for image in &params.images {
            let archive = image.display().to_string();
            // A freshly created socket may not accept yet: a few tries.
            let mut last = Ok(String::new());
            for _ in 0..20 {
                last = run(
                    "ctr",
                    &[
                        "-a",
                        &address,
                        "-n",
                        "k8s.io",
                        "images",
                        "import",
                        "--all-platforms",
                        &archive,
                    ],
                );
                if last.is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            last?;
        }

        std::fs::write(d("kubelet-config.yaml"), kubelet_config(self, params))
            .map_err(Error::io("writing the kubelet configuration"))?;
        let kubelet = params.bin_dir.join("kubelet");
        self.spawn(
            "kubelet",
            &kubelet,
            vec![
                format!("--config={}", d("kubelet-config.yaml").display()),
                format!("--kubeconfig={}", params.kubelet_kubeconfig.display()),
                format!("--root-dir={}", d("kubelet").display()),
                format!("--cert-dir={}", d("kubelet/pki").display()),
                format!("--hostname-override={}", self.name),
                format!("--node-ip={}", self.ip),
                format!("--node-labels={REAL_NODE_LABEL}={}", params.cluster),
                "--v=1".into(),
            ],
        )?;
        let proxy = params.bin_dir.join("kube-proxy");
        self.spawn(
            "kube-proxy",
            &proxy,
            vec![
                format!("--kubeconfig={}", params.proxy_kubeconfig.display()),
                format!("--hostname-override={}", self.name),
                "--proxy-mode=nftables".into(),
                format!("--cluster-cidr={}", params.cluster_cidr),
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
                "--metrics-bind-address=127.0.0.1:10249".into(),
                "--healthz-bind-address=127.0.0.1:10256".into(),
                "--v=1".into(),
            ],
        )?;
        info!(node = %self.name, ip = %self.ip, "real node started");
        Ok(())
    }

    /// Starts `program` in the node's network namespace, logging to `<dir>/<name>.log`.
    fn spawn(&mut self, name: &str, program: &Path, args: Vec<String>) -> Result<()> {
        let mut all = vec![
            format!("--net=/var/run/netns/{}", self.netns),
            "--".to_owned(),
            program.display().to_string(),
        ];
        all.extend(args);
        let process = Process::spawn(&Spec {
            name: format!("{}-{name}", self.name),
            program: PathBuf::from("nsenter"),
            args: all,
            log: self.dir.join(format!("{name}.log")),
        })?;
        self.processes.push(process);
        Ok(())
    }

    /// The node's containerd socket.
    pub(crate) fn containerd_socket(&self) -> PathBuf {
        socket_dir(&self.dir).join("containerd.sock")
    }

    /// Checks that the node's processes still run; the error names the log.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        for p in &mut self.processes {
            p.check_running()?;
        }
        Ok(())
    }

    fn make_cgroups(&self) -> Result<()> {
        match cgroup_v1_hierarchies() {
            Some(hierarchies) => {
                for h in hierarchies {
                    let dir = h.join(&self.cgroup_root);
                    std::fs::create_dir_all(&dir)
                        .map_err(Error::io(format!("creating cgroup {}", dir.display())))?;
                    if h.ends_with("cpuset") {
                        for f in ["cpuset.cpus", "cpuset.mems"] {
                            let v = std::fs::read_to_string(h.join(f)).unwrap_or_default();
                            let _ = std::fs::write(dir.join(f), v.trim());
                        }
                    }
                }
            }
            None => {
                let dir = Path::new("/sys/fs/cgroup").join(&self.cgroup_root);
                std::fs::create_dir_all(&dir)
                    .map_err(Error::io(format!("creating cgroup {}", dir.display())))?;
            }
        }
        Ok(())
    }

    /// Stops everything and removes what the node left on the host (idempotent).
    pub(crate) fn stop(&mut self) {
        // The kubelet and kube-proxy, then containerd; the shims and containers after.
        while let Some(mut p) = self.processes.pop() {
            p.terminate(Duration::from_secs(5));
        }
        remove_node_leftovers(&self.dir, &self.cgroup_root);
        self.remove_network();
        let mut h = host();
        h.nodes = h.nodes.saturating_sub(1);
        // The last real node of the host (no other process has one) puts the sysctls back.
        if h.nodes == 0 && used_addresses().is_empty() {
            for (key, value) in std::mem::take(&mut h.sysctls) {
                if read_sysctl(&key).as_deref() != Some(value.as_str()) {
                    let _ = std::fs::write(format!("/proc/sys/{key}"), &value);
                    debug!(%key, %value, "host sysctl restored");
                }
            }
            let _ = std::fs::remove_file(SYSCTL_FILE);
            if run("ip", &["link", "show", "master", UNDERLAY_BRIDGE])
                .is_ok_and(|o| o.trim().is_empty())
            {
                let _ = run("ip", &["link", "del", UNDERLAY_BRIDGE]);
            }
        }
    }

    fn remove_network(&self) {
        let _ = run("ip", &["netns", "del", &self.netns]);
        let _ = run("ip", &["link", "del", &self.host_link]);
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        if !self.processes.is_empty() {
            self.stop();
        }
    }
}

/// Kills the processes (shims, containers) whose command line or cgroup names the node,
/// unmounts what is mounted under its directory, removes its cgroups and kubelet log links.
/// Safe on a node that never started or was left by a killed process.
pub(crate) fn remove_node_leftovers(dir: &Path, cgroup_root: &str) {
    let marker = dir.display().to_string();
    let sockets = socket_dir(dir);
    let socket_marker = sockets.display().to_string();
    // Shims (their command line names the containerd socket under `dir`) and everything in
    // the node's cgroups (containers).
    let mut pids = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains(&marker)
                || cmdline.contains(&socket_marker)
                || cgroup.contains(&format!("/{cgroup_root}/"))
                || cgroup
                    .lines()
                    .any(|l| l.ends_with(&format!("/{cgroup_root}")))
            {
                pids.push(pid);
            }
        }
    }
    for pid in &pids {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) has no memory-safety preconditions; a stale pid yields ESRCH.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    if !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(300));
    }
    // Mounts under the node's directory, deepest first.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut under: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m.starts_with(&marker))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in under {
        if let Ok(c) = std::ffi::CString::new(m.clone()) {
            #[allow(unsafe_code)]
            // SAFETY: umount2 on a NUL-terminated path; failure is reported by its return.
            let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            if rc != 0 {
                warn!(mount = %m, "cannot unmount");
            }
        }
    }
    // cgroups, deepest first, in every hierarchy.
    let roots: Vec<PathBuf> = match cgroup_v1_hierarchies() {
        Some(h) => h.into_iter().map(|h| h.join(cgroup_root)).collect(),
        None => vec![Path::new("/sys/fs/cgroup").join(cgroup_root)],
    };
    for root in roots {
        let mut dirs = Vec::new();
        collect_dirs(&root, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(&d);
        }
    }
    let _ = std::fs::remove_dir_all(&sockets);
    // The kubelet's links in /var/log/containers that point into the node's directory.
    if let Ok(entries) = std::fs::read_dir("/var/log/containers") {
        for e in entries.flatten() {
            if std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
    out.push(dir.to_owned());
}

/// Checks what real nodes need before anything starts; the error names what is missing.
pub(crate) fn preflight(binaries: &crate::Binaries) -> Result<()> {
    if !is_root() {
        return Err(Error::InvalidConfig(
            "real nodes need root (network namespaces, cgroups, mounts): run as root, or use \
             kwok nodes only"
                .to_owned(),
        ));
    }
    for program in ["nsenter", "containerd", "ctr", "runc", "nft", "ldd"] {
        if which(program).is_none() {
            return Err(Error::InvalidConfig(format!(
                "real nodes need `{program}` (Debian packages containerd, runc, nftables, \
                 util-linux; hack/test.sh installs them)"
            )));
        }
    }
    for path in [
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/bin/busybox",
    ] {
        if !Path::new(path).exists() {
            return Err(Error::InvalidConfig(format!(
                "real nodes need {path} (Debian packages containernetworking-plugins and \
                 busybox-static; hack/test.sh installs them)"
            )));
        }
    }
    for binary in NODE_BINARIES {
        if !binaries.path(binary).is_file() {
            return Err(Error::InvalidConfig(format!(
                "real nodes need {} (built by hack/k8s-binaries.sh)",
                binaries.path(binary).display()
            )));
        }
    }
    Ok(())
}

/// The binaries of hack/k8s-binaries.sh real nodes run.
pub const NODE_BINARIES: [&str; 4] = ["kubelet", "kube-proxy", "coredns", "pause"];

/// The API server flags that change when the cluster has real nodes: it listens on every
/// address (the nodes reach it on [`UNDERLAY_HOST`]) and the `kubernetes` Service points there.
pub(crate) fn control_plane_for_real_nodes(args: &mut [String]) {
    for arg in args.iter_mut() {
        if arg == "--bind-address=127.0.0.1" {
            *arg = "--bind-address=0.0.0.0".to_owned();
        } else if arg == "--advertise-address=127.0.0.1" {
            *arg = format!("--advertise-address={UNDERLAY_HOST}");
        } else if arg == "--endpoint-reconciler-type=none" {
            *arg = "--endpoint-reconciler-type=lease".to_owned();
        }
    }
}

/// What [`node_files`] needs.
pub(crate) struct NodeFiles<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) pki: &'a crate::pki::Pki,
    pub(crate) apiserver_port: u16,
    pub(crate) pod_cidr: Ipv4Network,
    pub(crate) service_cidr: Ipv4Network,
    pub(crate) cidrs: &'a [Ipv4Network],
    pub(crate) bin_dir: &'a Path,
}

/// The cluster DNS address: the tenth of the service CIDR.
pub(crate) fn dns_ip(service_cidr: Ipv4Network) -> Result<Ipv4Addr> {
    service_cidr
        .nth(10)
        .ok_or_else(|| Error::InvalidConfig(format!("service CIDR {service_cidr} is too small")))
}

/// Writes the images, certificates and kubeconfigs of the real nodes of a cluster and
/// allocates their addresses; one [`NodeParams`] per node.
pub(crate) fn node_files(f: &NodeFiles<'_>) -> Result<Vec<NodeParams>> {
    use crate::pki::Usage;
    let images_dir = f.dir.join("images");
    std::fs::create_dir_all(&images_dir).map_err(Error::io("creating the images directory"))?;
    let pause = crate::image::pause(&f.bin_dir.join("pause"))?;
    let images = [
        pause.clone(),
        crate::image::busybox()?,
        crate::image::program("coredns", &f.bin_dir.join("coredns"))?,
        crate::image::program("kubectl", &f.bin_dir.join("kubectl"))?,
    ];
    let mut archives = Vec::new();
    for image in &images {
        let name = image.reference().replace(['/', ':'], "_");
        let path = images_dir.join(format!("{name}.tar"));
        image.write(&path)?;
        archives.push(path);
    }
    let server = format!("https://{UNDERLAY_HOST}:{}", f.apiserver_port);
    let ca_file = f.dir.join("ca.crt");
    let proxy = f.pki.leaf("system:kube-proxy", &[], &[], Usage::Client)?;
    let proxy_kubeconfig = f.dir.join("kube-proxy.kubeconfig");
    crate::cluster::write_private(
        &proxy_kubeconfig,
        &crate::cluster::render_kubeconfig(
            f.cluster,
            &server,
            &f.pki.ca.cert,
            "system:kube-proxy",
            &proxy,
        ),
    )?;
    let mut out = Vec::new();
    for (i, cidr) in f.cidrs.iter().enumerate() {
        let name = format!("{}-real-{i}", f.cluster);
        let dir = f.dir.join("nodes").join(&name);
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let (ip, netns, host_link) = allocate(&dir)?;
        let user = format!("system:node:{name}");
        let client = f.pki.leaf(&user, &["system:nodes"], &[], Usage::Client)?;
        let kubeconfig = dir.join("kubelet.kubeconfig");
        crate::cluster::write_private(
            &kubeconfig,
            &crate::cluster::render_kubeconfig(f.cluster, &server, &f.pki.ca.cert, &user, &client),
        )?;
        let ip_text = ip.to_string();
        let serving = f.pki.leaf(
            &name,
            &[],
            &[ip_text.as_str(), name.as_str()],
            Usage::Server,
        )?;
        let (cert, key) = (
            dir.join("kubelet-serving.crt"),
            dir.join("kubelet-serving.key"),
        );
        crate::cluster::write_private(&cert, &serving.cert)?;
        crate::cluster::write_private(&key, &serving.key)?;
        out.push(NodeParams {
            name,
            cluster: f.cluster.to_owned(),
            dir,
            pod_cidr: *cidr,
            cluster_cidr: f.pod_cidr,
            dns_ip: dns_ip(f.service_cidr)?,
            bin_dir: f.bin_dir.to_owned(),
            images: archives.clone(),
            pause_image: pause.reference(),
            kubelet_kubeconfig: kubeconfig,
            kubelet_cert: cert,
            kubelet_key: key,
            ca_file: ca_file.clone(),
            proxy_kubeconfig: proxy_kubeconfig.clone(),
            ip,
            netns,
            host_link,
        });
    }
    Ok(out)
}

/// Waits until every real node of the cluster is Ready (failing fast, naming the log, when a
/// node process exits), then records each node's pod subnet in its spec.
pub(crate) async fn wait_ready(
    client: &kube::Client,
    nodes: &mut [RealNode],
    deadline: std::time::Instant,
) -> Result<()> {
    use k8s_openapi::api::core::v1::Node;
    let api: kube::Api<Node> = kube::Api::all(client.clone());
    loop {
        for node in nodes.iter_mut() {
            node.check_running()?;
        }
        let mut ready = 0;
        for node in nodes.iter() {
            if let Ok(Some(n)) = api.get_opt(&node.name).await
                && n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            {
                ready += 1;
            }
        }
        if ready == nodes.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| n.dir.join("kubelet.log").display().to_string())
                .collect();
            return Err(Error::InvalidConfig(format!(
                "real nodes not Ready in time; see {}",
                logs.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for node in nodes.iter() {
        let patch = serde_json::json!({"spec": {"podCIDR": node.pod_cidr.to_string(), "podCIDRs": [node.pod_cidr.to_string()]}});
        api.patch(
            &node.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "recording the pod subnet of node {}",
            node.name
        )))?;
    }
    Ok(())
}

async fn apply<K>(client: &kube::Client, object: serde_json::Value) -> Result<()>
where
    K: kube::Resource<DynamicType = ()>,
{
    use kube::core::{ApiResource, DynamicObject};
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
    let resource = ApiResource::erase::<K>(&());
    let api: kube::Api<DynamicObject> = match namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), &ns, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    };
    api.patch(
        &name,
        &kube::api::PatchParams::apply("liqo-testenv").force(),
        &kube::api::Patch::Apply(&object),
    )
    .await
    .map_err(Error::kube(format!("applying {} {name}", K::kind(&()))))?;
    Ok(())
}

/// CoreDNS as a Deployment in kube-system behind Service `kube-dns` at the cluster DNS
/// address; waits until it is available.
pub(crate) async fn deploy_dns(
    client: &kube::Client,
    service_cidr: Ipv4Network,
    deadline: std::time::Instant,
) -> Result<()> {
    use k8s_openapi::api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Service, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    };
    use serde_json::json;
    let image = format!("localhost/liqo-rs/coredns:{}", crate::image::TAG);
    apply::<ServiceAccount>(client, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}})).await?;
    apply::<ClusterRole>(client, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    })).await?;
    apply::<ClusterRoleBinding>(client, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:coredns"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
        "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
    })).await?;
    apply::<ConfigMap>(
        client,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": ".:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    loadbalance
}
"},
        }),
    )
    .await?;
    apply::<Deployment>(client, json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "serviceAccountName": "coredns",
                    "dnsPolicy": "Default",
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{"key": REAL_NODE_LABEL, "operator": "Exists"}]}],
                    }}},
                    "containers": [{
                        "name": "coredns",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "ports": [
                            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": true}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                },
            },
        },
    })).await?;
    apply::<Service>(client, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": dns_ip(service_cidr)?.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        },
    })).await?;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), "kube-system");
    loop {
        if let Ok(d) = deployments.get("coredns").await
            && d.status.and_then(|s| s.available_replicas).unwrap_or(0) >= 1
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::InvalidConfig(
                "CoreDNS did not become available on the real nodes in time (kubectl -n \
                 kube-system describe pods -l k8s-app=kube-dns)"
                    .to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes the real nodes a dead process left under cluster directory `dir`.
pub(crate) fn remove_stale_nodes(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("nodes")) else {
        return;
    };
    for e in entries.flatten() {
        let node_dir = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        remove_node_leftovers(&node_dir, &format!("liqo-testenv-{name}"));
        let (netns, link) = names_for(&node_dir);
        let _ = run("ip", &["netns", "del", &netns]);
        let _ = run("ip", &["link", "del", &link]);
    }
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    unsafe {
        libc::geteuid() == 0
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn wait_until(within: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::InvalidConfig(format!(
        "timed out waiting for {what}"
    )))
}

/// containerd's configuration: everything under `dir` (pure).
fn containerd_config(dir: &Path, pause_image: &str) -> String {
    let d = |p: &str| dir.join(p).display().to_string();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
    max_conf_num = 1
"#,
        root = d("containerd/root"),
        state = d("containerd/state"),
        sock = socket_dir(dir).join("containerd.sock").display(),
        opt = d("containerd/opt"),
        runc = d("runc"),
        cni = d("cni/net.d"),
    )
}

/// The bridge + host-local CNI configuration of a node (pure).
fn cni_config(cluster: &str, dir: &Path, pod_cidr: Ipv4Network) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": format!("liqo-testenv-{cluster}"),
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": dir.join("cni/ipam").display().to_string(),
                    "ranges": [[{"subnet": pod_cidr.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// The KubeletConfiguration of a node (pure but for the paths).
fn kubelet_config(node: &RealNode, params: &NodeParams) -> String {
    let d = |p: &str| node.dir.join(p).display().to_string();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://{sock}
imageServiceEndpoint: unix://{sock}
address: {ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [{dns}]
resolvConf: /etc/resolv.conf
staticPodPath: {manifests}
podLogsDir: {logs}
volumePluginDir: {plugins}
failSwapOn: false
protectKernelDefaults: false
serializeImagePulls: false
nodeStatusUpdateFrequency: 10s
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"#,
        cgroup_root = node.cgroup_root,
        sock = node.containerd_socket().display(),
        ip = node.ip,
        cert = params.kubelet_cert.display(),
        key = params.kubelet_key.display(),
        ca = params.ca_file.display(),
        dns = params.dns_ip,
        manifests = d("manifests"),
        logs = d("pod-logs"),
        plugins = d("volume-plugins"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_keep_everything_under_the_node_directory() {
        let dir = Path::new("/tmp/lt/rome/nodes/rome-real-0");
        let c = containerd_config(dir, "localhost/liqo-rs/pause:1");
        for line in c.lines().filter(|l| l.contains("\"/")) {
            assert!(
                line.contains("/tmp/lt/rome/nodes/rome-real-0")
                    || line.contains("/usr/")
                    || line.contains("/run/liqo-testenv/n-"),
                "{line}"
            );
        }
        assert!(c.contains("restrict_oom_score_adj = true"));
        let cni: serde_json::Value =
            serde_json::from_str(&cni_config("rome", dir, "10.200.3.0/24".parse().unwrap()))
                .unwrap();
        assert_eq!(
            cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.200.3.0/24"
        );
    }
}
