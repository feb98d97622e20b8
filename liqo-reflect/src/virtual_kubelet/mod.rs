//! The virtual kubelet: one per VirtualNode, in the consumer cluster.
//!
//! [`run`] reads the VirtualNode and the kubeconfig Secret of the provider, then runs, until
//! shutdown:
//!
//! - the [node loop](node::run_node): the Node named after the VirtualNode (capacity and
//!   allocatable from `spec.resourceQuota.hard`, labels, the virtual-node taint), its Lease in
//!   `kube-node-lease`, and its `Ready` condition from periodic checks of the provider's API
//!   server (NotReady after `failure_threshold` consecutive failures, Ready again after one
//!   success);
//! - the [`ReflectionManager`] with the built-in reflectors, the EndpointSlice reflector and
//!   the [`PodReflector`], started and stopped per namespace pair as the NamespaceMaps of the
//!   tenant namespace report them `Accepted` ([`accepted_pairs`]);
//! - the pod fallback ([`PodReflector::run_fallback`]): pods on the virtual node in namespaces
//!   that are not offloaded stay `Pending` with reason `OffloadingBackOff`.

pub mod controller;
mod exec;
pub mod identity;
pub mod kubelet_api;
pub mod launcher;
pub mod node;
pub mod stats;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{reflector, watcher},
};
use liqo_core::runtime::retrying;
use liqo_core::{
    api::offloading::v1beta1::{MappingPhase, NamespaceMap, VirtualNode},
    ids::{ClusterId, NamespacePair},
};
use liqo_ipam::remap::RemoteCidrs;
use tracing::{info, warn};

use crate::{
    Clusters, Error, ReflectionManager, Result,
    forge::{EndpointSliceForge, RemoteNodes},
    pod::{PodReflector, PodReflectorConfig},
};

/// Key of the kubeconfig in the Secret referenced by `VirtualNode.spec.kubeconfigSecretRef`.
pub const KUBECONFIG_SECRET_KEY: &str = "kubeconfig";

/// Settings of one virtual kubelet. Start from [`Config::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name of the VirtualNode (and of the Node).
    pub virtual_node_name: String,
    /// Tenant namespace of the provider in the home cluster (where the VirtualNode, its
    /// kubeconfig Secret and the NamespaceMaps live).
    pub tenant_namespace: String,
    /// Id of the home (consumer) cluster.
    pub home_cluster_id: ClusterId,
    /// Id of the provider cluster.
    pub foreign_cluster_id: ClusterId,
    /// Secret with the provider's kubeconfig (key `kubeconfig`); default: the VirtualNode's
    /// `spec.kubeconfigSecretRef`.
    pub foreign_kubeconfig_secret_name: Option<String>,
    /// Address of the virtual kubelet (Node InternalIP, host IP of offloaded pods).
    pub node_ip: IpAddr,
    /// Port the Node advertises for the kubelet API.
    pub kubelet_port: u16,
    /// The provider's pod (and external) CIDRs and how they are remapped locally.
    pub remote_cidrs: RemoteCidrs,
    /// The home cluster's CIDRs and how the provider remapped them (for EndpointSlices).
    pub home_cidrs: RemoteCidrs,
    /// Interval between health checks of the provider's API server.
    pub ping_interval: Duration,
    /// Timeout of one health check.
    pub ping_timeout: Duration,
    /// Consecutive failed checks that make the Node NotReady.
    pub failure_threshold: u32,
    /// Duration of the node Lease (renewed every quarter of it).
    pub lease_duration: Duration,
    /// Maximum interval between two writes of the Node status.
    pub status_update_interval: Duration,
    /// Workers of the pod reflector per namespace.
    pub pod_workers: usize,
    /// Whether to create and maintain the Node (upstream `--create-node`).
    pub create_node: bool,
    /// Extra labels of the Node (upstream `--node-extra-labels`).
    pub extra_labels: BTreeMap<String, String>,
}

impl Config {
    /// Settings with upstream-like defaults: ping every 10 s with a 1 s timeout, NotReady
    /// after 3 failures, 40 s Lease, status written at least every 60 s, 50 pod workers
    /// (upstream 10: too few to keep up with a burst, see docs/performance.md),
    /// kubelet port 10250, node IP 127.0.0.1, no CIDR remapping.
    ///
    /// ```
    /// let config = liqo_reflect::virtual_kubelet::Config::new(
    ///     "milan",
    ///     "liqo-tenant-milan",
    ///     "rome".parse().unwrap(),
    ///     "milan".parse().unwrap(),
    /// );
    /// assert_eq!(config.failure_threshold, 3);
    /// ```
    pub fn new(
        virtual_node_name: impl Into<String>,
        tenant_namespace: impl Into<String>,
        home_cluster_id: ClusterId,
        foreign_cluster_id: ClusterId,
    ) -> Self {
        Self {
            virtual_node_name: virtual_node_name.into(),
            tenant_namespace: tenant_namespace.into(),
            home_cluster_id,
            foreign_cluster_id,
            foreign_kubeconfig_secret_name: None,
            node_ip: IpAddr::from([127, 0, 0, 1]),
            kubelet_port: 10250,
            remote_cidrs: RemoteCidrs::default(),
            home_cidrs: RemoteCidrs::default(),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(1),
            failure_threshold: 3,
            lease_duration: Duration::from_secs(40),
            status_update_interval: Duration::from_secs(60),
            pod_workers: 50,
            create_node: true,
            extra_labels: BTreeMap::new(),
        }
    }
}

/// A client of the provider from the kubeconfig in Secret `namespace/name` (key
/// `kubeconfig`).
pub async fn remote_client(home: &Client, namespace: &str, name: &str) -> Result<Client> {
    let secret = Api::<Secret>::namespaced(home.clone(), namespace)
        .get(name)
        .await
        .map_err(Error::kube(format!(
            "reading the provider kubeconfig Secret {namespace}/{name}"
        )))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_SECRET_KEY))
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "Secret {namespace}/{name} has no `{KUBECONFIG_SECRET_KEY}` key"
            ))
        })?;
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| {
        Error::InvalidConfig(format!(
            "the kubeconfig in Secret {namespace}/{name} is not UTF-8"
        ))
    })?;
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| {
        Error::InvalidConfig(format!("the kubeconfig in Secret {namespace}/{name}: {e}"))
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| {
            Error::InvalidConfig(format!("the kubeconfig in Secret {namespace}/{name}: {e}"))
        })?;
    Client::try_from(config).map_err(Error::kube(format!(
        "building a client from Secret {namespace}/{name}"
    )))
}

/// The namespace pairs the NamespaceMaps report `Accepted` (pure).
///
/// ```
/// use liqo_core::api::offloading::v1beta1::{MappingPhase, NamespaceMap, NamespaceMapSpec, RemoteNamespaceStatus};
/// use liqo_reflect::virtual_kubelet::accepted_pairs;
///
/// let mut map = NamespaceMap::new("milan", NamespaceMapSpec::default());
/// let mut status = liqo_core::api::offloading::v1beta1::NamespaceMapStatus::default();
/// for (ns, phase) in [("demo", MappingPhase::Accepted), ("wip", MappingPhase::CreationLoopBackOff)] {
///     status.current_mapping.insert(ns.into(), RemoteNamespaceStatus {
///         remote_namespace: Some(format!("{ns}-rome")),
///         phase: Some(phase),
///     });
/// }
/// map.status = Some(status);
/// let pairs = accepted_pairs(&[map]);
/// assert_eq!(pairs.len(), 1);
/// assert_eq!(pairs.iter().next().unwrap().remote(), "demo-rome");
/// ```
pub fn accepted_pairs(maps: &[NamespaceMap]) -> BTreeSet<NamespacePair> {
    maps.iter()
        .filter(|m| m.metadata.deletion_timestamp.is_none())
        .filter_map(|m| m.status.as_ref())
        .flat_map(|s| s.current_mapping.iter())
        .filter(|(_, s)| s.phase == Some(MappingPhase::Accepted))
        .filter_map(|(local, s)| {
            NamespacePair::new(local.clone(), s.remote_namespace.clone()?).ok()
        })
        .collect()
}

/// Runs the virtual kubelet of `config.virtual_node_name` until `shutdown` resolves.
///
/// ```no_run
/// # async fn run(home: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_reflect::virtual_kubelet::{Config, run};
///
/// let config = Config::new("milan", "liqo-tenant-milan", "rome".parse().unwrap(), "milan".parse().unwrap());
/// run(home, config, liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    home: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    run_with(home, config, |builder| builder, shutdown).await
}

/// As [`run`], with `customize` applied to the [`ReflectionManager`] builder after the
/// built-in reflectors are registered: how a virtual kubelet of one's own reflects more kinds
/// (`builder.generic(...)` with a [`Forge`](crate::Forge), or `builder.reflector(...)` with a
/// [`Reflector`](crate::Reflector) built from `builder.clusters()`).
///
/// # Errors
///
/// As [`run`].
pub async fn run_with(
    home: Client,
    config: Config,
    customize: impl FnOnce(crate::ReflectionManagerBuilder) -> crate::ReflectionManagerBuilder,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    // Who this kubelet is on its home cluster (its own ServiceAccount when started by the
    // VirtualNode controller), for the operator reading the log.
    let review = k8s_openapi::api::authentication::v1::SelfSubjectReview::default();
    match Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(home.clone())
        .create(&kube::api::PostParams::default(), &review)
        .await
    {
        Ok(r) => {
            let user = r
                .status
                .and_then(|s| s.user_info)
                .and_then(|u| u.username)
                .unwrap_or_default();
            info!(%user, "authenticated to the home cluster");
        }
        Err(e) => warn!(error = %e, "cannot tell which user this kubelet is (SelfSubjectReview)"),
    }
    let vn = Api::<VirtualNode>::namespaced(home.clone(), &config.tenant_namespace)
        .get_opt(&config.virtual_node_name)
        .await
        .map_err(Error::kube(format!(
            "reading VirtualNode {}/{}",
            config.tenant_namespace, config.virtual_node_name
        )))?
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "VirtualNode {}/{} does not exist: check --virtual-node-name and --tenant-namespace",
                config.tenant_namespace, config.virtual_node_name
            ))
        })?;
    let secret = config
        .foreign_kubeconfig_secret_name
        .clone()
        .or_else(|| vn.spec.kubeconfig_secret_ref.as_ref().map(|r| r.name.clone()))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "VirtualNode {}/{} has no spec.kubeconfigSecretRef: pass --foreign-kubeconfig-secret-name",
                config.tenant_namespace, config.virtual_node_name
            ))
        })?;
    let remote = remote_client(&home, &config.tenant_namespace, &secret).await?;
    let kubelet_version = match home.apiserver_version().await {
        Ok(v) => v.git_version,
        Err(e) => {
            warn!(error = %e, "cannot read the home API server version");
            "v0.0.0-liqo".to_owned()
        }
    };
    let clusters = Clusters {
        local: home.clone(),
        remote: remote.clone(),
        local_id: config.home_cluster_id.clone(),
        remote_id: config.foreign_cluster_id.clone(),
    };
    let remote_nodes = RemoteNodes::watch(home.clone(), &config.foreign_cluster_id).await;
    let builder = customize(
        ReflectionManager::builder(clusters.clone())
            .with_default_reflectors()
            .with_endpoint_slices(EndpointSliceForge::new(
                config.home_cidrs.clone(),
                remote_nodes,
            )),
    );
    let pods = Arc::new(PodReflector::new(
        clusters,
        PodReflectorConfig {
            node_name: config.virtual_node_name.clone(),
            node_ip: config.node_ip,
            remote_cidrs: config.remote_cidrs.clone(),
            workers: config.pod_workers,
        },
        builder.registry(),
    ));
    let manager = builder.reflector(pods.clone()).build();

    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    // Bound before the Node is written: with port 0 the system picks a free port, and the
    // Node advertises the one bound, so the API server reaches this kubelet and no other. A
    // port in use is an error (another kubelet would answer for this node's pods); an
    // address that is not this host's (the Node's address is forwarded here) is logged and
    // the rest of the kubelet runs.
    let address = std::net::SocketAddr::new(config.node_ip, config.kubelet_port);
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(Error::InvalidConfig(format!(
                "cannot serve the kubelet API on {address}: {e}; give each virtual kubelet \
                 its own --node-ip or --listen-port (0 picks a free port)"
            )));
        }
        Err(e) => {
            warn!(%address, error = %e, "cannot serve the kubelet API (kubectl logs, exec and port-forward will not work)");
            None
        }
    };
    let kubelet_port = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(config.kubelet_port, |a| a.port());
    let node_loop = async {
        if config.create_node {
            node::run_node(
                home.clone(),
                remote.clone(),
                node::NodeLoopConfig {
                    virtual_node: config.virtual_node_name.clone(),
                    namespace: config.tenant_namespace.clone(),
                    params: node::NodeParams {
                        name: config.virtual_node_name.clone(),
                        remote_cluster_id: config.foreign_cluster_id.clone(),
                        node_ip: config.node_ip,
                        kubelet_port,
                        kubelet_version,
                        extra_labels: config.extra_labels.clone(),
                    },
                    ping_interval: config.ping_interval,
                    ping_timeout: config.ping_timeout,
                    failure_threshold: config.failure_threshold,
                    lease_duration: config.lease_duration,
                    status_update_interval: config.status_update_interval,
                },
                shutdown.clone(),
            )
            .await;
        }
    };
    let kubelet_api = serve_kubelet_api(
        kubelet_api::KubeletApi::new(
            home.clone(),
            remote.clone(),
            &config.tenant_namespace,
            &config.virtual_node_name,
        ),
        listener,
        &config,
        shutdown.clone(),
    );
    info!(node = %config.virtual_node_name, provider = %config.foreign_cluster_id, "virtual kubelet running");
    tokio::join!(
        kubelet_api,
        node_loop,
        pods.run_fallback(shutdown.clone()),
        follow_namespace_maps(
            home.clone(),
            &config.tenant_namespace,
            &manager,
            &pods,
            shutdown.clone()
        ),
    );
    info!(node = %config.virtual_node_name, "virtual kubelet stopped");
    Ok(())
}

/// Serves the kubelet API on `listener` (the Node's address and kubelet port), with a
/// self-signed certificate.
async fn serve_kubelet_api(
    api: kubelet_api::KubeletApi,
    listener: Option<tokio::net::TcpListener>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) {
    let Some(listener) = listener else {
        return;
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| config.node_ip.to_string(), |a| a.to_string());
    let certificate = match liqo_core::webhook::ServingCertificate::self_signed(
        std::slice::from_ref(&config.virtual_node_name),
        &[config.node_ip],
    ) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot create the kubelet API certificate");
            return;
        }
    };
    let client_ca = match kubelet_api::client_ca(&api_home(&api)).await {
        Ok(ca) => ca,
        Err(e) => {
            warn!(error = %e, "cannot serve the kubelet API without the cluster's client CA (kubectl logs and exec will not work)");
            return;
        }
    };
    info!(%address, "serving the kubelet API (client certificates and SubjectAccessReviews required)");
    if let Err(e) = kubelet_api::serve(api, listener, &certificate, &client_ca, shutdown).await {
        warn!(error = %e, "kubelet API stopped");
    }
}

fn api_home(api: &kubelet_api::KubeletApi) -> Client {
    api.home()
}

/// Starts and stops reflection as the NamespaceMaps of `namespace` change.
async fn follow_namespace_maps(
    home: Client,
    namespace: &str,
    manager: &ReflectionManager,
    pods: &PodReflector,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (store, writer) = reflector::store::<NamespaceMap>();
    let stream = reflector::reflector(
        writer,
        retrying(watcher(
            Api::<NamespaceMap>::namespaced(home, namespace),
            watcher::Config::default(),
        )),
    );
    let mut stream = std::pin::pin!(stream);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut running: BTreeSet<NamespacePair> = BTreeSet::new();
    let mut retry = tokio::time::interval(Duration::from_secs(5));
    // The store is complete once the first list is done.
    let mut listed = false;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            next = stream.try_next() => match next {
                Ok(Some(watcher::Event::InitDone)) => listed = true,
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "NamespaceMap watch error");
                    continue;
                }
            },
            _ = retry.tick() => {}
        }
        if !listed {
            continue;
        }
        let maps: Vec<NamespaceMap> = store.state().iter().map(|m| (**m).clone()).collect();
        let wanted = accepted_pairs(&maps);
        pods.set_offloaded_namespaces(wanted.iter().map(|p| p.local().to_owned()));
        for pair in running.difference(&wanted).cloned().collect::<Vec<_>>() {
            match manager.stop_namespace(&pair).await {
                Ok(()) => {
                    info!(%pair, "namespace reflection stopped");
                    running.remove(&pair);
                }
                Err(e) => warn!(%pair, error = %e, "cannot stop namespace reflection"),
            }
        }
        for pair in wanted.difference(&running).cloned().collect::<Vec<_>>() {
            match manager.start_namespace(&pair).await {
                Ok(()) => {
                    info!(%pair, "namespace reflection started");
                    running.insert(pair);
                }
                Err(e) => warn!(%pair, error = %e, "cannot start namespace reflection"),
            }
        }
    }
}
