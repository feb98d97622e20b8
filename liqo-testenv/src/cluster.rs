//! A local Kubernetes cluster made of real processes.

use std::{
    collections::BTreeMap,
    future::Future,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use ipnetwork::Ipv4Network;
use k8s_openapi::{
    api::core::v1::{Node, ServiceAccount},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use tracing::{debug, info};

use crate::{
    Error, Result,
    binaries::Binaries,
    pki::{self, Pki, Usage},
    process::{self, Component, Daemon, Process, Spec},
};

/// Label every fake node carries, with the cluster name as value.
pub const CLUSTER_LABEL: &str = "testenv.liqo.io/cluster";
/// The annotation kwok uses to pick the nodes it manages.
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The kwok Stage configuration: how fake nodes and pods move through their lifecycle.
const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");

/// The lines every container on a kwok fake node has in its log: kwok serves them for
/// `pods/log` of any pod (a file the testenv writes, named by a kwok `ClusterLogs` resource).
pub const KWOK_CONTAINER_LOG_LINES: [&str; 3] = [
    "liqo-testenv: container started",
    "liqo-testenv: listening on :8080",
    "liqo-testenv: ready",
];

/// The container log file kwok serves, in the CRI log format kwok reads
/// (`<RFC 3339 time> <stream> F <line>`).
fn kwok_container_log() -> String {
    KWOK_CONTAINER_LOG_LINES
        .iter()
        .enumerate()
        .map(|(i, line)| format!("2026-01-01T00:00:0{i}.000000000Z stdout F {line}\n"))
        .collect()
}

/// kwok's debugging resources, appended to the Stage configuration: a `ClusterLogs` serving
/// `log_file` as the log of every container of every pod, a `ClusterAttach` streaming what is
/// appended to `log_file` to `pods/attach` of every container, a `ClusterPortForward` that
/// answers every port of every pod with `cat` (an echo: what a client sends through
/// `pods/portforward` comes back), and a `ClusterExec` that runs
/// the command of `pods/exec` for every container of every pod ON THE HOST, as the user
/// running kwok, in `work_dir` (acceptable for throw-away test control planes only).
fn kwok_debugging(log_file: &Path, work_dir: &Path) -> String {
    // JSON strings are valid YAML scalars, whatever the path contains.
    let quote = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    format!(
        "\n---\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         kind: ClusterLogs\n\
         metadata:\n  name: liqo-testenv-logs\n\
         spec:\n  logs:\n  - logsFile: {log}\n    previousLogsFile: {log}\n\
         ---\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         kind: ClusterExec\n\
         metadata:\n  name: liqo-testenv-exec\n\
         spec:\n  execs:\n  - local:\n      workDir: {work}\n\
         ---\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         kind: ClusterAttach\n\
         metadata:\n  name: liqo-testenv-attach\n\
         spec:\n  attaches:\n  - logsFile: {log}\n\
         ---\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         kind: ClusterPortForward\n\
         metadata:\n  name: liqo-testenv-port-forward\n\
         spec:\n  forwards:\n  - command: [cat]\n",
        log = quote(log_file),
        work = quote(work_dir),
    )
}

static NEXT_CIDR_INDEX: AtomicU32 = AtomicU32::new(0);

/// Capacity of each fake node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCapacity {
    /// CPU, as a Kubernetes quantity (default `"16"`).
    pub cpu: String,
    /// Memory, as a Kubernetes quantity (default `"64Gi"`).
    pub memory: String,
    /// Maximum number of pods (default `"110"`).
    pub pods: String,
}

impl Default for NodeCapacity {
    fn default() -> Self {
        Self {
            cpu: "16".into(),
            memory: "64Gi".into(),
            pods: "110".into(),
        }
    }
}

/// How to build a [`Cluster`]. Start from [`ClusterConfig::new`] and chain the setters.
///
/// ```
/// use liqo_testenv::ClusterConfig;
///
/// let config = ClusterConfig::new("rome")
///     .nodes(3)
///     .pod_cidr("10.0.0.0/16".parse().unwrap())
///     .node_label("topology.liqo.io/region", "center");
/// assert_eq!(config.name(), "rome");
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    name: String,
    nodes: usize,
    capacity: NodeCapacity,
    node_labels: BTreeMap<String, String>,
    pod_cidr: Option<Ipv4Network>,
    service_cidr: Option<Ipv4Network>,
    bin_dir: Option<PathBuf>,
    base_dir: Option<PathBuf>,
    apiserver_port: Option<u16>,
    start_timeout: Duration,
    real_nodes: usize,
}

impl ClusterConfig {
    /// A cluster called `name` (an RFC 1123 label: it names the log directory and the nodes)
    /// with two fake nodes and pod and service CIDRs distinct from every other cluster this
    /// process starts.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            nodes: 2,
            capacity: NodeCapacity::default(),
            node_labels: BTreeMap::new(),
            pod_cidr: None,
            service_cidr: None,
            bin_dir: None,
            base_dir: None,
            apiserver_port: None,
            start_timeout: Duration::from_secs(180),
            real_nodes: 0,
        }
    }

    /// Number of real nodes (default 0): each a real kubelet with its own containerd, bridge
    /// CNI, kube-proxy and cgroup root in a network namespace of its own; the cluster then
    /// also runs CoreDNS. Needs root, and the node binaries of hack/k8s-binaries.sh. Real and
    /// kwok nodes can be mixed.
    #[must_use]
    pub fn real_nodes(mut self, n: usize) -> Self {
        self.real_nodes = n;
        self
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of kwok fake nodes (default 2; 0 is allowed).
    #[must_use]
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Capacity (and allocatable) of each fake node.
    #[must_use]
    pub fn node_capacity(mut self, capacity: NodeCapacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Adds a label to every fake node.
    #[must_use]
    pub fn node_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.node_labels.insert(key.into(), value.into());
        self
    }

    /// The pod CIDR. Each node gets a /24 of it and kwok gives pods IPs from there. Two
    /// clusters given the same pod CIDR overlap, as independent clusters often do.
    #[must_use]
    pub fn pod_cidr(mut self, cidr: Ipv4Network) -> Self {
        self.pod_cidr = Some(cidr);
        self
    }

    /// The service CIDR (`--service-cluster-ip-range`).
    #[must_use]
    pub fn service_cidr(mut self, cidr: Ipv4Network) -> Self {
        self.service_cidr = Some(cidr);
        self
    }

    /// Directory of the Kubernetes binaries (default: [`Binaries::default_dir`]).
    #[must_use]
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Parent of the cluster directory (default: `target/testenv`, or `$LIQO_TESTENV_DIR`).
    /// Certificates, kubeconfigs, etcd data and logs go to `<base>/<name>/`.
    #[must_use]
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// A fixed port for kube-apiserver on 127.0.0.1 (default: a free port).
    #[must_use]
    pub fn apiserver_port(mut self, port: u16) -> Self {
        self.apiserver_port = Some(port);
        self
    }

    /// How long start-up may take before it fails (default 180 s).
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }
}

/// Loopback ports of one cluster.
#[derive(Debug, Clone, Copy)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    controller_manager: u16,
    scheduler: u16,
    kwok: u16,
}

impl Ports {
    fn pick(apiserver: Option<u16>) -> Result<Self> {
        let apiserver = match apiserver {
            Some(port) => {
                if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
                    return Err(Error::PortInUse {
                        port,
                        component: "kube-apiserver",
                    });
                }
                port
            }
            None => free_port()?,
        };
        Ok(Self {
            etcd_client: free_port()?,
            etcd_peer: free_port()?,
            apiserver,
            controller_manager: free_port()?,
            scheduler: free_port()?,
            kwok: free_port()?,
        })
    }
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(Error::io("finding a free port"))?
        .port())
}

/// Name of the ConfigMap (in `kube-system`) where kubeadm records the cluster configuration.
pub(crate) const KUBEADM_CONFIG: &str = "kubeadm-config";

/// Writes ConfigMap `kube-system/kubeadm-config` with a kubeadm `ClusterConfiguration` whose
/// `networking` has the cluster's pod and service CIDRs, as kubeadm does.
async fn publish_cluster_configuration(
    client: &Client,
    pod_cidr: Ipv4Network,
    service_cidr: Ipv4Network,
) -> Result<()> {
    let configuration = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  \
         podSubnet: {pod_cidr}\n  serviceSubnet: {service_cidr}\n  dnsDomain: cluster.local\n"
    );
    let map: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KUBEADM_CONFIG, "namespace": "kube-system"},
        "data": {"ClusterConfiguration": configuration},
    }))
    .map_err(|e| Error::InvalidConfig(format!("{KUBEADM_CONFIG}: {e}")))?;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "kube-system")
        .patch(
            KUBEADM_CONFIG,
            &PatchParams::apply("liqo-testenv").force(),
            &Patch::Apply(&map),
        )
        .await
        .map_err(Error::kube(format!("writing kube-system/{KUBEADM_CONFIG}")))?;
    Ok(())
}

/// A running local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
/// kwok with fake nodes, all on 127.0.0.1.
///
/// Dropping it (also while unwinding from a panic) kills every process. If the test process is
/// killed, the kernel kills them (parent-death signal); a later start with the same name cleans
/// up anything left in its directory.
///
/// ```no_run
/// # async fn run() -> liqo_testenv::Result<()> {
/// use k8s_openapi::api::core::v1::Node;
/// use liqo_testenv::{Cluster, ClusterConfig};
///
/// let cluster = Cluster::start(ClusterConfig::new("rome")).await?;
/// let nodes: kube::Api<Node> = kube::Api::all(cluster.client());
/// println!("kubeconfig: {}", cluster.kubeconfig_path().display());
/// # Ok(()) }
/// ```
pub struct Cluster {
    name: String,
    dir: PathBuf,
    kubeconfig: PathBuf,
    client: Client,
    pod_cidr: Ipv4Network,
    service_cidr: Ipv4Network,
    apiserver_url: String,
    specs: BTreeMap<Component, Spec>,
    processes: Vec<Process>,
    pki: PkiFiles,
    real_nodes: Vec<crate::node::RealNode>,
}

#[derive(Debug, Clone)]
struct PkiFiles {
    ca_der: Vec<u8>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("apiserver_url", &self.apiserver_url)
            .field("pod_cidr", &self.pod_cidr)
            .field("service_cidr", &self.service_cidr)
            .field("processes", &self.processes)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts a cluster and waits until it is ready: the API server answers `/readyz`, the
    /// controller manager, the scheduler and kwok report healthy, the `default` service
    /// account exists and every fake node is Ready.
    ///
    /// Ports are picked at random on 127.0.0.1; if one is taken by another process between
    /// being picked and being bound, start-up is retried with new ports.
    pub async fn start(config: ClusterConfig) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(&config).await {
                Err(Error::ComponentExited { tail, .. })
                    if attempt < 3
                        && config.apiserver_port.is_none()
                        && tail.contains("address already in use") =>
                {
                    info!(cluster = %config.name, "a port was taken during start-up; retrying");
                }
                other => return other,
            }
        }
    }

    /// Starts several clusters in parallel (see [`Cluster::start`]).
    pub async fn start_all(configs: Vec<ClusterConfig>) -> Result<Vec<Self>> {
        futures::future::try_join_all(configs.into_iter().map(Self::start)).await
    }

    async fn try_start(config: &ClusterConfig) -> Result<Self> {
        let dir = config
            .base_dir
            .clone()
            .unwrap_or_else(default_base_dir)
            .join(&config.name);
        let result = Self::start_in(config, dir.clone()).await;
        if let Err(e) = &result
            && !matches!(e, Error::ClusterDirInUse { .. })
        {
            // Every process was killed when the failed start-up dropped them: release the
            // directory so that a retry (or the next run) can claim it.
            let _ = std::fs::remove_file(dir.join(OWNER_FILE));
        }
        result
    }

    async fn start_in(config: &ClusterConfig, dir: PathBuf) -> Result<Self> {
        let started = Instant::now();
        validate_name(&config.name)?;
        let binaries = match &config.bin_dir {
            Some(dir) => Binaries::in_dir(dir)?,
            None => Binaries::discover()?,
        };
        let (pod_cidr, service_cidr) = pick_cidrs(config);
        let all_node_cidrs = node_cidrs(pod_cidr, config.nodes + config.real_nodes)?;
        let (node_cidrs, real_cidrs) = all_node_cidrs.split_at(config.nodes);
        if config.real_nodes > 0 {
            crate::node::preflight(&binaries)?;
        }
        claim_dir(&dir)?;
        let ports = Ports::pick(config.apiserver_port)?;
        let real = config.real_nodes > 0;
        let underlay = crate::node::UNDERLAY_HOST.to_string();

        // Certificates, keys and kubeconfigs.
        let pki = Pki::new(&config.name)?;
        let ca_der = pem_to_der(&pki.ca.cert)?;
        let first_service_ip = service_cidr
            .nth(1)
            .ok_or_else(|| {
                Error::InvalidConfig(format!("service CIDR {service_cidr} is too small"))
            })?
            .to_string();
        let serving_sans = [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            first_service_ip.as_str(),
            // Where real nodes (and pods, through the kubernetes Service) reach it.
            underlay.as_str(),
        ];
        let files: Vec<(&str, String)> = {
            let apiserver = pki.leaf("kube-apiserver", &[], &serving_sans, Usage::Server)?;
            let kubelet_client = pki.leaf(
                "kube-apiserver-kubelet-client",
                &["system:masters"],
                &[],
                Usage::Client,
            )?;
            let loopback = ["127.0.0.1", "localhost"];
            let kcm_serving = pki.leaf("kube-controller-manager", &[], &loopback, Usage::Server)?;
            let sched_serving = pki.leaf("kube-scheduler", &[], &loopback, Usage::Server)?;
            let kwok_serving = pki.leaf("kwok", &[], &loopback, Usage::Server)?;
            let (sa_key, sa_pub) = pki::service_account_keys()?;
            let front_proxy = pki.leaf("front-proxy-client", &[], &[], Usage::Client)?;
            vec![
                ("ca.crt", pki.ca.cert.clone()),
                ("ca.key", pki.ca.key.clone()),
                ("sa.key", sa_key),
                ("sa.pub", sa_pub),
                ("front-proxy-client.crt", front_proxy.cert),
                ("front-proxy-client.key", front_proxy.key),
                ("apiserver.crt", apiserver.cert),
                ("apiserver.key", apiserver.key),
                ("apiserver-kubelet-client.crt", kubelet_client.cert),
                ("apiserver-kubelet-client.key", kubelet_client.key),
                ("controller-manager.crt", kcm_serving.cert),
                ("controller-manager.key", kcm_serving.key),
                ("scheduler.crt", sched_serving.cert),
                ("scheduler.key", sched_serving.key),
                ("kwok.crt", kwok_serving.cert),
                ("kwok.key", kwok_serving.key),
            ]
        };
        let exec_dir = dir.join("kwok-exec");
        std::fs::create_dir_all(&exec_dir).map_err(Error::io("creating kwok's exec directory"))?;
        write_private(&dir.join("kwok-container.log"), &kwok_container_log())?;
        write_private(
            &dir.join("kwok-stages.yaml"),
            &format!(
                "{KWOK_STAGES}{}",
                kwok_debugging(&dir.join("kwok-container.log"), &exec_dir)
            ),
        )?;
        for (name, content) in &files {
            write_private(&dir.join(name), content)?;
        }
        let apiserver_url = format!("https://127.0.0.1:{}", ports.apiserver);
        let identities = [
            ("kubeconfig", "admin", &["system:masters"][..]),
            (
                "controller-manager.kubeconfig",
                "system:kube-controller-manager",
                &[][..],
            ),
            ("scheduler.kubeconfig", "system:kube-scheduler", &[][..]),
        ];
        for (file, user, groups) in identities {
            let cert = pki.leaf(user, groups, &[], Usage::Client)?;
            let kubeconfig =
                render_kubeconfig(&config.name, &apiserver_url, &pki.ca.cert, user, &cert);
            write_private(&dir.join(file), &kubeconfig)?;
        }

        let mut specs = component_specs(&binaries, &dir, ports, pod_cidr, service_cidr);
        if real && let Some(apiserver) = specs.get_mut(&Component::ApiServer) {
            crate::node::control_plane_for_real_nodes(&mut apiserver.args);
        }
        let real_params = if real {
            crate::node::node_files(&crate::node::NodeFiles {
                cluster: &config.name,
                dir: &dir,
                pki: &pki,
                apiserver_port: ports.apiserver,
                pod_cidr,
                service_cidr,
                cidrs: real_cidrs,
                bin_dir: binaries.dir(),
            })?
        } else {
            Vec::new()
        };
        let mut cluster_processes = Vec::new();
        let logs = dir.clone();
        let deadline = started + config.start_timeout;

        // etcd, then the API server.
        for component in [Component::Etcd, Component::ApiServer] {
            cluster_processes.push(spawn(&specs, component, &dir)?);
        }
        let etcd = health_client(&format!("http://127.0.0.1:{}", ports.etcd_client), None)?;
        wait_for(
            &mut cluster_processes,
            "etcd health",
            deadline,
            &logs,
            || probe(&etcd, "/health", "true"),
        )
        .await?;
        let apiserver_probe = health_client(&apiserver_url, Some(&ca_der))?;
        wait_for(
            &mut cluster_processes,
            "kube-apiserver /readyz",
            deadline,
            &logs,
            || probe(&apiserver_probe, "/readyz", "ok"),
        )
        .await?;
        let kubeconfig = dir.join("kubeconfig");
        let client = client_from_kubeconfig(&kubeconfig).await?;

        // The rest of the control plane.
        for component in [
            Component::ControllerManager,
            Component::Scheduler,
            Component::Kwok,
        ] {
            cluster_processes.push(spawn(&specs, component, &dir)?);
        }
        create_nodes(&client, config, node_cidrs).await?;
        for (component, port) in [
            (Component::ControllerManager, ports.controller_manager),
            (Component::Scheduler, ports.scheduler),
            (Component::Kwok, ports.kwok),
        ] {
            let url = format!("https://127.0.0.1:{port}");
            let health = health_client(&url, Some(&ca_der))?;
            wait_for(
                &mut cluster_processes,
                &format!("{component} /healthz"),
                deadline,
                &logs,
                || probe(&health, "/healthz", "ok"),
            )
            .await?;
        }
        let service_accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        wait_for(
            &mut cluster_processes,
            "the default service account (created by kube-controller-manager)",
            deadline,
            &logs,
            || async { matches!(service_accounts.get_opt("default").await, Ok(Some(_))) },
        )
        .await?;
        // The cluster's networking recorded where kubeadm records it, so that tools detect
        // the pod and service CIDRs as they do on kubeadm clusters.
        publish_cluster_configuration(&client, pod_cidr, service_cidr).await?;
        let nodes: Api<Node> = Api::all(client.clone());
        let expected = config.nodes;
        let selector = format!("{CLUSTER_LABEL}={}", config.name);
        wait_for(
            &mut cluster_processes,
            "fake nodes Ready (kwok)",
            deadline,
            &logs,
            || async {
                match nodes.list(&ListParams::default().labels(&selector)).await {
                    Ok(list) => {
                        list.items.len() == expected && list.items.iter().all(is_node_ready)
                    }
                    Err(_) => false,
                }
            },
        )
        .await?;

        let mut real_nodes = Vec::new();
        for params in real_params {
            // On this thread, not a blocking-pool one: the node's processes get SIGKILL when
            // the thread that spawned them ends (parent-death signal), and pool threads end
            // when idle.
            let node = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| crate::node::RealNode::launch(&params))
                }
                _ => crate::node::RealNode::launch(&params),
            };
            real_nodes.push(node?);
        }
        if real {
            crate::node::wait_ready(&client, &mut real_nodes, deadline).await?;
            crate::node::deploy_dns(&client, service_cidr, deadline).await?;
        }

        info!(
            cluster = %config.name,
            secs = started.elapsed().as_secs_f64(),
            %apiserver_url,
            "cluster ready"
        );
        Ok(Self {
            real_nodes,
            name: config.name.clone(),
            dir,
            kubeconfig,
            client,
            pod_cidr,
            service_cidr,
            apiserver_url,
            specs,
            processes: cluster_processes,
            pki: PkiFiles { ca_der },
        })
    }

    /// Loads `images` into the containerd of every real node (pods use them with
    /// `imagePullPolicy: Never`); nothing to do without real nodes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when an image cannot be built or `ctr images import` fails.
    pub async fn load_images(&self, images: &[crate::image::ImageBuilder]) -> Result<()> {
        if self.real_nodes.is_empty() {
            return Ok(());
        }
        let dir = self.dir.join("images");
        std::fs::create_dir_all(&dir).map_err(Error::io("creating the images directory"))?;
        for image in images {
            let path = dir.join(format!(
                "{}.tar",
                image.reference().replace(['/', ':'], "_")
            ));
            image.write(&path)?;
            for node in &self.real_nodes {
                let out = tokio::process::Command::new("ctr")
                    .arg("-a")
                    .arg(node.containerd_socket())
                    .args(["-n", "k8s.io", "images", "import", "--all-platforms"])
                    .arg(&path)
                    .output()
                    .await
                    .map_err(Error::io("running ctr"))?;
                if !out.status.success() {
                    return Err(Error::InvalidConfig(format!(
                        "importing {} into node {}: {}",
                        image.reference(),
                        node.name,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client with cluster-admin rights (`system:masters`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Path of an admin kubeconfig for kubectl and other tools.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The log file kwok serves for every container of this cluster's fake nodes (starts
    /// with [`KWOK_CONTAINER_LOG_LINES`]); lines appended to it go to `kubectl attach`
    /// sessions (kwok follows it).
    #[must_use]
    pub fn kwok_container_log(&self) -> PathBuf {
        self.dir().join("kwok-container.log")
    }

    /// Directory with the cluster's certificates, kubeconfigs and component logs
    /// (`<component>.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a component's log file.
    pub fn log_path(&self, component: Component) -> PathBuf {
        self.dir.join(format!("{}.log", component.name()))
    }

    /// The pod CIDR.
    pub fn pod_cidr(&self) -> Ipv4Network {
        self.pod_cidr
    }

    /// The service CIDR.
    pub fn service_cidr(&self) -> Ipv4Network {
        self.service_cidr
    }

    /// URL of the API server, `https://127.0.0.1:<port>`.
    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }

    /// Process ids of the running components (each is also its process-group id).
    pub fn pids(&self) -> Vec<(Component, u32)> {
        self.processes
            .iter()
            .filter_map(|p| Some((component_named(&p.name)?, p.pid())))
            .collect()
    }

    /// Starts a program under test against this cluster: `--kubeconfig <admin kubeconfig>` is
    /// passed before `args`, and its output goes to `<cluster dir>/<name>.log`. See [`Daemon`].
    pub fn daemon<I, S>(&self, name: &str, program: impl AsRef<Path>, args: I) -> Result<Daemon>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let all = [
            "--kubeconfig".to_owned(),
            self.kubeconfig.display().to_string(),
        ]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
        Daemon::spawn(name, program, all, self.dir.join(format!("{name}.log")))
    }

    /// Creates a namespace (server-side apply: nothing happens if it exists).
    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        let namespace: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .map_err(|e| Error::InvalidConfig(format!("namespace {name}: {e}")))?;
        Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone())
            .patch(
                name,
                &PatchParams::apply("liqo-testenv"),
                &Patch::Apply(&namespace),
            )
            .await
            .map_err(Error::kube(format!("creating namespace {name}")))?;
        Ok(())
    }

    /// Applies CustomResourceDefinitions (server-side apply) and waits until each is
    /// Established. For liqo-rs: `cluster.install_crds(liqo_core::api::crds())`.
    pub async fn install_crds(
        &self,
        crds: impl IntoIterator<Item = CustomResourceDefinition>,
    ) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut names = Vec::new();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("liqo-testenv").force(),
                &Patch::Apply(&crd),
            )
            .await
            .map_err(Error::kube(format!("applying CRD {name}")))?;
            names.push(name);
        }
        for name in names {
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                &name,
                kube::runtime::wait::conditions::is_crd_established(),
            );
            match tokio::time::timeout(Duration::from_secs(60), established).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Error::InvalidConfig(format!("waiting for CRD {name}: {e}")));
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("CRD {name} to be Established"),
                        secs: 60,
                        logs: self.dir.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Stops one component (SIGKILL), e.g. the API server to simulate an outage.
    pub fn stop_component(&mut self, component: Component) {
        self.processes.retain_mut(|p| {
            if p.name == component.name() {
                p.kill();
                false
            } else {
                true
            }
        });
        self.record_pids();
    }

    /// Starts a component stopped by [`Cluster::stop_component`] again, with the same flags,
    /// and waits until it is healthy.
    pub async fn start_component(&mut self, component: Component) -> Result<()> {
        if self.processes.iter().any(|p| p.name == component.name()) {
            return Ok(());
        }
        self.processes
            .push(spawn(&self.specs, component, &self.dir)?);
        self.record_pids();
        let deadline = Instant::now() + Duration::from_secs(120);
        let logs = self.dir.clone();
        let (url, path, expect) = match component {
            Component::Etcd => (
                self.flag_url(component, "--listen-client-urls="),
                "/health",
                "true",
            ),
            Component::ApiServer => (self.apiserver_url.clone(), "/readyz", "ok"),
            _ => (self.flag_url(component, "--secure-port="), "/healthz", "ok"),
        };
        let ca = (component != Component::Etcd).then_some(self.pki.ca_der.as_slice());
        let health = health_client(&url, ca)?;
        wait_for(
            &mut self.processes,
            &format!("{component} to be healthy again"),
            deadline,
            &logs,
            || probe(&health, path, expect),
        )
        .await
    }

    fn flag_url(&self, component: Component, flag: &str) -> String {
        let value = self
            .specs
            .get(&component)
            .and_then(|s| s.args.iter().find_map(|a| a.strip_prefix(flag)))
            .unwrap_or_default();
        if value.starts_with("http") {
            value.to_owned()
        } else {
            format!("https://127.0.0.1:{value}")
        }
    }

    fn record_pids(&self) {
        let _ = write_owner_file(&self.dir, &self.processes);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Real nodes first: their kubelets talk to the API server while they stop.
        for node in &mut self.real_nodes {
            node.stop();
        }
        self.real_nodes.clear();
        // Reverse start order: kwok and the controllers first, etcd last.
        while let Some(mut process) = self.processes.pop() {
            process.kill();
        }
        let _ = std::fs::remove_dir_all(self.dir.join("etcd-data"));
        let _ = std::fs::remove_file(self.dir.join(OWNER_FILE));
        debug!(cluster = %self.name, "cluster stopped");
    }
}

fn component_named(name: &str) -> Option<Component> {
    Component::ALL.into_iter().find(|c| c.name() == name)
}

fn spawn(specs: &BTreeMap<Component, Spec>, component: Component, dir: &Path) -> Result<Process> {
    let spec = specs
        .get(&component)
        .ok_or_else(|| Error::InvalidConfig(format!("no start specification for {component}")))?;
    let process = Process::spawn(spec)?;
    // Record the process group at once so that a later run can clean it up if this process
    // is killed before the cluster is fully up.
    append_owner_pgid(dir, component, process.pid())?;
    Ok(process)
}

fn component_specs(
    binaries: &Binaries,
    dir: &Path,
    ports: Ports,
    pod_cidr: Ipv4Network,
    service_cidr: Ipv4Network,
) -> BTreeMap<Component, Spec> {
    let d = |f: &str| dir.join(f).display().to_string();
    let etcd_client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let etcd_peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    let always_allow =
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics".to_owned();
    let mut specs = BTreeMap::new();
    let mut add = |component: Component, args: Vec<String>| {
        specs.insert(
            component,
            Spec {
                name: component.name().to_owned(),
                program: binaries.path(component.name()),
                args,
                log: dir.join(format!("{}.log", component.name())),
            },
        );
    };
    add(
        Component::Etcd,
        vec![
            "--name=node0".into(),
            format!("--data-dir={}", d("etcd-data")),
            format!("--listen-client-urls={etcd_client}"),
            format!("--advertise-client-urls={etcd_client}"),
            format!("--listen-peer-urls={etcd_peer}"),
            format!("--initial-advertise-peer-urls={etcd_peer}"),
            format!("--initial-cluster=node0={etcd_peer}"),
            "--auto-compaction-retention=1".into(),
            "--quota-backend-bytes=8589934592".into(),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ],
    );
    add(
        Component::ApiServer,
        vec![
            format!("--etcd-servers={etcd_client}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.apiserver),
            format!("--tls-cert-file={}", d("apiserver.crt")),
            format!("--tls-private-key-file={}", d("apiserver.key")),
            format!("--client-ca-file={}", d("ca.crt")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", d("sa.pub")),
            format!("--service-account-signing-key-file={}", d("sa.key")),
            format!("--service-cluster-ip-range={service_cidr}"),
            "--allow-privileged=true".into(),
            "--authorization-mode=Node,RBAC".into(),
            format!(
                "--kubelet-client-certificate={}",
                d("apiserver-kubelet-client.crt")
            ),
            format!("--kubelet-client-key={}", d("apiserver-kubelet-client.key")),
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            // Aggregation layer (front proxy), so that extension API servers can be added.
            format!("--requestheader-client-ca-file={}", d("ca.crt")),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            format!("--proxy-client-cert-file={}", d("front-proxy-client.crt")),
            format!("--proxy-client-key-file={}", d("front-proxy-client.key")),
            // The kubernetes Service cannot point at a loopback address.
            "--endpoint-reconciler-type=none".into(),
            // Benchmarks create thousands of objects: no client-side throttling by the server.
            "--enable-priority-and-fairness=false".into(),
            "--max-requests-inflight=0".into(),
            "--max-mutating-requests-inflight=0".into(),
            "--profiling=false".into(),
        ],
    );
    add(
        Component::ControllerManager,
        vec![
            format!("--kubeconfig={}", d("controller-manager.kubeconfig")),
            format!(
                "--authentication-kubeconfig={}",
                d("controller-manager.kubeconfig")
            ),
            format!(
                "--authorization-kubeconfig={}",
                d("controller-manager.kubeconfig")
            ),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.controller_manager),
            format!("--tls-cert-file={}", d("controller-manager.crt")),
            format!("--tls-private-key-file={}", d("controller-manager.key")),
            always_allow.clone(),
            format!("--service-account-private-key-file={}", d("sa.key")),
            format!("--root-ca-file={}", d("ca.crt")),
            "--use-service-account-credentials=true".into(),
            // Enables the CSR signers (kubernetes.io/kube-apiserver-client, kubelet-serving...).
            format!("--cluster-signing-cert-file={}", d("ca.crt")),
            format!("--cluster-signing-key-file={}", d("ca.key")),
            format!("--cluster-cidr={pod_cidr}"),
            format!("--service-cluster-ip-range={service_cidr}"),
            "--node-monitor-grace-period=40s".into(),
            "--kube-api-qps=1000".into(),
            "--kube-api-burst=1000".into(),
            "--profiling=false".into(),
        ],
    );
    add(
        Component::Scheduler,
        vec![
            format!("--kubeconfig={}", d("scheduler.kubeconfig")),
            format!("--authentication-kubeconfig={}", d("scheduler.kubeconfig")),
            format!("--authorization-kubeconfig={}", d("scheduler.kubeconfig")),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.scheduler),
            format!("--tls-cert-file={}", d("scheduler.crt")),
            format!("--tls-private-key-file={}", d("scheduler.key")),
            always_allow,
            "--profiling=false".into(),
        ],
    );
    add(
        Component::Kwok,
        vec![
            format!("--kubeconfig={}", d("kubeconfig")),
            format!("--config={}", d("kwok-stages.yaml")),
            "--manage-all-nodes=false".into(),
            format!("--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake"),
            format!("--cidr={pod_cidr}"),
            "--node-ip=127.0.0.1".into(),
            format!("--node-port={}", ports.kwok),
            format!("--server-address=127.0.0.1:{}", ports.kwok),
            format!("--tls-cert-file={}", d("kwok.crt")),
            format!("--tls-private-key-file={}", d("kwok.key")),
            "--node-lease-duration-seconds=40".into(),
        ],
    );
    specs
}

async fn create_nodes(
    client: &Client,
    config: &ClusterConfig,
    cidrs: &[Ipv4Network],
) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for (i, cidr) in cidrs.iter().enumerate() {
        let name = format!("{}-node-{i}", config.name);
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_owned(), name.clone()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("type".to_owned(), "kwok".to_owned()),
            (CLUSTER_LABEL.to_owned(), config.name.clone()),
        ]);
        labels.extend(config.node_labels.clone());
        let capacity = serde_json::json!({
            "cpu": config.capacity.cpu,
            "memory": config.capacity.memory,
            "pods": config.capacity.pods,
        });
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": { KWOK_NODE_ANNOTATION: "fake" },
            },
            "spec": { "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] },
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": crate::KUBERNETES_VERSION,
                    "kubeProxyVersion": "",
                    "bootID": "", "containerRuntimeVersion": "kwok", "kernelVersion": "",
                    "machineID": "", "osImage": "kwok", "systemUUID": "",
                },
            },
        }))
        .map_err(|e| Error::InvalidConfig(format!("node {name}: {e}")))?;
        nodes
            .create(&PostParams::default(), &node)
            .await
            .map_err(Error::kube(format!("creating node {name}")))?;
    }
    Ok(())
}

fn is_node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Polls `check` every 200 ms until it holds, failing early when a component exits.
async fn wait_for<F, Fut>(
    processes: &mut [Process],
    what: &str,
    deadline: Instant,
    logs: &Path,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        if check().await {
            debug!(what, secs = started.elapsed().as_secs_f64(), "ready");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                secs: started.elapsed().as_secs(),
                logs: logs.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn health_client(url: &str, ca_der: Option<&[u8]>) -> Result<Client> {
    let uri = url
        .parse()
        .map_err(|e| Error::InvalidConfig(format!("bad URL {url}: {e}")))?;
    let mut config = kube::Config::new(uri);
    config.root_cert = ca_der.map(|der| vec![der.to_vec()]);
    config.connect_timeout = Some(Duration::from_secs(1));
    config.read_timeout = Some(Duration::from_secs(3));
    Client::try_from(config).map_err(Error::kube(format!("building a health client for {url}")))
}

async fn probe(client: &Client, path: &str, expect: &str) -> bool {
    let Ok(request) = http::Request::get(path).body(Vec::new()) else {
        return false;
    };
    client
        .request_text(request)
        .await
        .is_ok_and(|body| body.contains(expect))
}

/// Builds a client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Kubeconfig {
        path: path.to_owned(),
        source: e,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| err(Box::new(e)))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(Box::new(e)))?;
    Client::try_from(config).map_err(|e| err(Box::new(e)))
}

pub(crate) fn render_kubeconfig(
    cluster: &str,
    server: &str,
    ca: &str,
    user: &str,
    cert: &pki::CertPair,
) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {crt}\n    \
         client-key-data: {key}\ncontexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: {user}\n\
         current-context: {cluster}\n",
        ca = b64(ca),
        crt = b64(&cert.cert),
        key = b64(&cert.key),
    )
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| Error::InvalidConfig(format!("generated CA is not valid PEM: {e}")))
}

pub(crate) fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    file.write_all(content.as_bytes())
        .map_err(Error::io(format!("writing {}", path.display())))
}

/// Cluster names follow the rule of Liqo cluster ids (an RFC 1123 label), so a test cluster's
/// name can serve as its Liqo cluster id; at most 40 characters leave room for node names.
fn validate_name(name: &str) -> Result<()> {
    let rule = "must be a valid Liqo cluster id (lowercase letters, digits and '-') of at most 40 characters";
    match liqo_core::ids::ClusterId::new(name) {
        Ok(_) if name.len() <= 40 => Ok(()),
        Ok(_) => Err(Error::InvalidConfig(format!(
            "cluster name {name:?} {rule}"
        ))),
        Err(e) => Err(Error::InvalidConfig(format!(
            "cluster name {name:?} {rule}: {e}"
        ))),
    }
}

fn pick_cidrs(config: &ClusterConfig) -> (Ipv4Network, Ipv4Network) {
    let needs_default = config.pod_cidr.is_none() || config.service_cidr.is_none();
    let index = if needs_default {
        NEXT_CIDR_INDEX.fetch_add(1, Ordering::Relaxed) % 50
    } else {
        0
    };
    let default_net = |second: u32| {
        // 10.<second>.0.0/16; `second` < 200, so this cannot fail.
        Ipv4Network::new(
            Ipv4Addr::new(10, u8::try_from(second).unwrap_or(0), 0, 0),
            16,
        )
        .unwrap_or_else(|_| Ipv4Network::from(Ipv4Addr::new(10, 0, 0, 0)))
    };
    (
        config.pod_cidr.unwrap_or_else(|| default_net(100 + index)),
        config
            .service_cidr
            .unwrap_or_else(|| default_net(150 + index)),
    )
}

/// One /24 per node out of the pod CIDR.
fn node_cidrs(pod_cidr: Ipv4Network, nodes: usize) -> Result<Vec<Ipv4Network>> {
    let available = if pod_cidr.prefix() <= 24 {
        1usize << (24 - pod_cidr.prefix())
    } else {
        0
    };
    if nodes > available {
        return Err(Error::InvalidConfig(format!(
            "pod CIDR {pod_cidr} has room for {available} node /24s, but {nodes} nodes were asked for"
        )));
    }
    let base = u32::from(pod_cidr.network());
    (0..nodes)
        .map(|i| {
            let offset = u32::try_from(i).unwrap_or(u32::MAX) << 8;
            Ipv4Network::new(Ipv4Addr::from(base + offset), 24)
                .map_err(|e| Error::InvalidConfig(e.to_string()))
        })
        .collect()
}

/// `target/testenv` of the workspace being tested, found from the running executable (test
/// binaries live in `target/<profile>/deps`); `$LIQO_TESTENV_DIR` overrides it.
pub fn default_base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIQO_TESTENV_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("testenv");
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "target"))
    {
        return target.join("testenv");
    }
    std::env::temp_dir().join("liqo-testenv")
}

const OWNER_FILE: &str = "owner";

/// Makes `dir` ours: refuses if a live process owns it, kills what a dead owner left running,
/// and starts from an empty directory.
fn claim_dir(dir: &Path) -> Result<()> {
    let owner_file = dir.join(OWNER_FILE);
    if let Ok(text) = std::fs::read_to_string(&owner_file) {
        let mut lines = text.lines();
        let owner = lines
            .next()
            .and_then(|l| l.strip_prefix("owner "))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = owner
            && process::is_alive(pid)
        {
            return Err(Error::ClusterDirInUse {
                dir: dir.to_owned(),
                pid,
            });
        }
        let marker = dir.display().to_string();
        for pgid in lines.filter_map(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok()) {
            // Only kill what is still one of our components (its command line names `dir`).
            let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                info!(pgid, dir = %dir.display(), "killing a component left by a dead test process");
                process::kill_group(pgid, libc::SIGKILL);
            }
        }
    }
    // Real nodes a dead process left: processes, mounts, cgroups, namespaces.
    crate::node::remove_stale_nodes(dir);
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(Error::io(format!("cleaning {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    std::fs::write(&owner_file, format!("owner {}\n", std::process::id()))
        .map_err(Error::io(format!("writing {}", owner_file.display())))
}

fn append_owner_pgid(dir: &Path, component: Component, pgid: u32) -> Result<()> {
    use std::io::Write;
    let path = dir.join(OWNER_FILE);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    writeln!(file, "{component} {pgid}").map_err(Error::io(format!("writing {}", path.display())))
}

fn write_owner_file(dir: &Path, processes: &[Process]) -> Result<()> {
    let mut text = format!("owner {}\n", std::process::id());
    for p in processes {
        text.push_str(&format!("{} {}\n", p.name, p.pid()));
    }
    std::fs::write(dir.join(OWNER_FILE), text).map_err(Error::io("writing the owner file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_cidrs_are_consecutive_slash_24s() {
        let cidrs = node_cidrs("10.0.0.0/16".parse().unwrap(), 3).unwrap();
        let cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]);
        assert!(node_cidrs("10.0.0.0/23".parse().unwrap(), 3).is_err());
        assert!(node_cidrs("10.0.0.0/25".parse().unwrap(), 1).is_err());
    }

    #[test]
    fn default_cidrs_differ_between_clusters() {
        let a = pick_cidrs(&ClusterConfig::new("a"));
        let b = pick_cidrs(&ClusterConfig::new("b"));
        assert_ne!(a.0, b.0);
        assert_ne!(a.1, b.1);
        assert_ne!(a.0, a.1);
        let same: Ipv4Network = "10.0.0.0/16".parse().unwrap();
        let c = pick_cidrs(&ClusterConfig::new("c").pod_cidr(same));
        let d = pick_cidrs(&ClusterConfig::new("d").pod_cidr(same));
        assert_eq!(c.0, d.0);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("rome").is_ok());
        assert!(validate_name("cluster-1").is_ok());
        for bad in ["", "Rome", "-a", "a-", "a_b", "a.b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kwok_serves_logs_and_runs_execs() {
        let config = format!(
            "{KWOK_STAGES}{}",
            kwok_debugging(Path::new("/tmp/a b/c.log"), Path::new("/tmp/x"))
        );
        let docs: Vec<serde_yaml::Value> = config
            .split("\n---\n")
            .map(|d| serde_yaml::from_str(d).unwrap())
            .collect();
        let kind = |k: &str| {
            docs.iter()
                .find(|d| d["kind"] == k)
                .unwrap_or_else(|| panic!("no {k}"))
                .clone()
        };
        assert!(docs.iter().filter(|d| d["kind"] == "Stage").count() >= 4);
        let logs = kind("ClusterLogs");
        assert_eq!(logs["spec"]["logs"][0]["logsFile"], "/tmp/a b/c.log");
        assert!(logs["spec"].get("selector").is_none(), "every pod");
        let attach = kind("ClusterAttach");
        assert_eq!(attach["spec"]["attaches"][0]["logsFile"], "/tmp/a b/c.log");
        let exec = kind("ClusterExec");
        assert_eq!(exec["spec"]["execs"][0]["local"]["workDir"], "/tmp/x");
        assert!(
            exec["spec"]["execs"][0].get("containers").is_none(),
            "every container"
        );
        let log = kwok_container_log();
        assert_eq!(log.lines().count(), KWOK_CONTAINER_LOG_LINES.len());
        for (line, want) in log.lines().zip(KWOK_CONTAINER_LOG_LINES) {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            assert_eq!(fields[1..], ["stdout", "F", want]);
        }
    }

    #[test]
    fn taken_port_is_reported() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = Ports::pick(Some(port)).unwrap_err();
        assert!(
            matches!(err, Error::PortInUse { port: p, .. } if p == port),
            "{err}"
        );
    }
}
