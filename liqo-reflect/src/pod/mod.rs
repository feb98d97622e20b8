//! Pod offloading, consumer side: pods bound to the virtual node become ShadowPods in the
//! provider, and the remote pods' status flows back.
//!
//! The [`PodReflector`] is a [`Reflector`]: for each offloaded namespace pair it watches the
//! local pods bound to its virtual node (`spec.nodeName`), the ShadowPods it made and the
//! provider Pods materialised from them in the remote namespace, and for each pod name:
//!
//! - local pod alive, no ShadowPod: creates the ShadowPod ([`forge::remote_shadow_pod`];
//!   create only, the spec of a pod never changes) and labels the local pod
//!   `liqo.io/shadowPod=true`;
//! - remote pod present: writes [`forge::local_pod_status`] into the local status (pod IP
//!   remapped, host IP = the virtual kubelet's, restart count increased when the provider
//!   recreated the pod);
//! - remote pod gone after it finished: the local pod shows the final phase with reason
//!   `RemotePodTerminated`;
//! - local pod deleted (or terminating): deletes the ShadowPod, then, once the remote pod is
//!   gone, finalizes the local deletion (there is no real kubelet to do it).
//!
//! [`PodReflector::run_fallback`] handles the pods bound to the virtual node in namespaces that
//! are not offloaded: they stay `Pending` with reason `OffloadingBackOff`, except the pods that
//! were offloaded (labelled `liqo.io/shadowPod=true`): their twin is gone with the namespace,
//! so they are deleted and their controllers recreate them on local nodes, as the
//! documentation promises for `liqoctl unoffload`. [`Reflector::stop_namespace`] does the same
//! at once for the namespace whose offloading ended.

pub mod forge;

use std::{
    collections::{HashMap, HashSet},
    fmt::Debug,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::runtime::retrying;
use liqo_core::{
    api::offloading::v1beta1::ShadowPod,
    ids::NamespacePair,
    labels::{
        TRUE, offloading,
        reflection::{DESTINATION, ORIGIN},
    },
    runtime::KeyedBackoff,
};
use liqo_ipam::remap::RemoteCidrs;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::{
    Clusters, Error, Reflector, Result,
    forge::ForgeContext,
    metrics::{ReflectorMetrics, Registry},
    queue::Queue,
    worker::{Handler, NamespaceTasks, Outcome, watch, watch_slim, work},
};

/// Settings of the [`PodReflector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodReflectorConfig {
    /// Name of the virtual node whose pods are offloaded.
    pub node_name: String,
    /// Address of the virtual kubelet: the host IP of offloaded pods.
    pub node_ip: IpAddr,
    /// Translation of the provider's pod (and external) CIDRs into the local view.
    pub remote_cidrs: RemoteCidrs,
    /// Concurrent workers per namespace pair (upstream: 10).
    pub workers: usize,
}

type RestartMap = Arc<Mutex<HashMap<String, forge::Restarts>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The pod reflector of one virtual node (see the [module](self) documentation).
///
/// ```no_run
/// # async fn run(local: kube::Client, remote: kube::Client) -> liqo_reflect::Result<()> {
/// use std::sync::Arc;
///
/// use liqo_core::ids::NamespacePair;
/// use liqo_reflect::{Clusters, ReflectionManager, pod::{PodReflector, PodReflectorConfig}};
///
/// let clusters = Clusters {
///     local,
///     remote,
///     local_id: "rome".parse().unwrap(),
///     remote_id: "milan".parse().unwrap(),
/// };
/// let builder = ReflectionManager::builder(clusters.clone()).with_default_reflectors();
/// let pods = Arc::new(PodReflector::new(
///     clusters,
///     PodReflectorConfig {
///         node_name: "milan".into(),
///         node_ip: "10.0.0.5".parse().unwrap(),
///         remote_cidrs: Default::default(),
///         workers: 10,
///     },
///     builder.registry(),
/// ));
/// let manager = builder.reflector(pods.clone()).build();
/// manager.start_namespace(&NamespacePair::new("demo", "demo-rome").unwrap()).await?;
/// # Ok(()) }
/// ```
pub struct PodReflector {
    clusters: Clusters,
    config: PodReflectorConfig,
    metrics: Arc<ReflectorMetrics>,
    namespaces: NamespaceTasks,
    active: Mutex<HashSet<String>>,
    offloaded: Mutex<HashSet<String>>,
    synced: tokio::sync::watch::Sender<bool>,
    restarts: RestartMap,
}

impl Debug for PodReflector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodReflector")
            .field("clusters", &self.clusters)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PodReflector {
    /// Name of the reflector (metrics label).
    pub const NAME: &'static str = "pods";

    /// A pod reflector for the virtual node `config.node_name`.
    pub fn new(clusters: Clusters, config: PodReflectorConfig, registry: &Registry) -> Self {
        Self {
            metrics: registry.reflector(Self::NAME),
            clusters,
            config,
            namespaces: NamespaceTasks::default(),
            active: Mutex::default(),
            offloaded: Mutex::default(),
            synced: tokio::sync::watch::Sender::new(false),
            restarts: RestartMap::default(),
        }
    }

    fn node_selector(&self) -> String {
        format!("spec.nodeName={}", self.config.node_name)
    }

    /// Tells the reflector which local namespaces are offloaded to its provider (the
    /// NamespaceMaps' accepted mappings), whether or not their reflection runs yet. The
    /// fallback waits for the first call: until then it cannot tell a namespace whose
    /// offloading ended from one whose reflection is about to start.
    pub fn set_offloaded_namespaces(&self, namespaces: impl IntoIterator<Item = String>) {
        *lock(&self.offloaded) = namespaces.into_iter().collect();
        self.synced.send_replace(true);
    }

    /// Keeps the pods bound to the virtual node in namespaces that are not offloaded `Pending`
    /// with reason `OffloadingBackOff`, deletes those that were offloaded (their controllers
    /// recreate them locally), and finalizes their deletion. Starts once
    /// [`set_offloaded_namespaces`](Self::set_offloaded_namespaces) was called; runs until
    /// `shutdown`.
    pub async fn run_fallback(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut synced = self.synced.subscribe();
        tokio::select! {
            () = &mut shutdown => return,
            _ = synced.wait_for(|s| *s) => {}
        }
        let api: Api<Pod> = Api::all(self.clusters.local.clone());
        let stream = retrying(watcher(
            api,
            watcher::Config::default().fields(&self.node_selector()),
        ))
        .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => return,
                next = stream.try_next() => next,
            };
            match next {
                Ok(Some(pod)) => {
                    if let Err(e) = self.fallback(&pod).await {
                        warn!(pod = %pod.name_any(), error = %e, "cannot handle a pod of a namespace that is not offloaded");
                    }
                }
                Ok(None) => return,
                Err(e) => debug!(error = %e, "pod watch error"),
            }
        }
    }

    async fn fallback(&self, pod: &Pod) -> Result<()> {
        let namespace = pod.namespace().unwrap_or_default();
        if lock(&self.active).contains(&namespace) || lock(&self.offloaded).contains(&namespace) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.clusters.local.clone(), &namespace);
        let name = pod.name_any();
        if pod.metadata.deletion_timestamp.is_some() || was_offloaded(pod) {
            if was_offloaded(pod) {
                info!(pod = %name, %namespace, "namespace no longer offloaded here: deleting the pod so that its controller recreates it");
            }
            return force_delete(&api, pod).await;
        }
        let status = forge::backoff_status(&namespace);
        if forge::status_matches(pod.status.as_ref(), &status) {
            return Ok(());
        }
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&forge::status_patch(&status)),
        )
        .await
        .map_err(Error::kube(format!(
            "marking pod {namespace}/{name} OffloadingBackOff"
        )))?;
        Ok(())
    }
}

/// Whether the pod was offloaded (the reflector labelled it when it created its ShadowPod).
fn was_offloaded(pod: &Pod) -> bool {
    pod.labels().get(offloading::SHADOW_POD).map(String::as_str) == Some(TRUE)
}

/// Deletes the offloaded pods of `namespace` bound to `node`: called when the namespace's
/// offloading to this provider ended (the twins go with the remote namespace).
async fn delete_offloaded(client: &kube::Client, namespace: &str, node: &str) -> Result<usize> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::ListParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .labels(&format!("{}={TRUE}", offloading::SHADOW_POD));
    let pods = api.list(&params).await.map_err(Error::kube(format!(
        "listing the offloaded pods of {namespace}"
    )))?;
    for pod in &pods.items {
        force_delete(&api, pod).await?;
    }
    Ok(pods.items.len())
}

async fn force_delete(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&pod.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting pod {}", pod.name_any()))(e)),
    }
}

#[async_trait]
impl Reflector for PodReflector {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.config.workers == 0 || self.namespaces.is_running(pair) {
            return Ok(());
        }
        let ctx = ForgeContext {
            local_cluster: self.clusters.local_id.clone(),
            remote_cluster: self.clusters.remote_id.clone(),
            local_namespace: pair.local().to_owned(),
            remote_namespace: pair.remote().to_owned(),
        };
        let owned = format!(
            "{ORIGIN}={},{DESTINATION}={}",
            ctx.local_cluster, ctx.remote_cluster
        );
        let local_api: Api<Pod> = Api::namespaced(self.clusters.local.clone(), pair.local());
        let shadow_api: Api<ShadowPod> =
            Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let remote_pods: Api<Pod> = Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let (local_store, local_writer) = reflector::store();
        let (shadow_store, shadow_writer) = reflector::store();
        let (remote_store, remote_writer) = reflector::store();
        let shared = Arc::new(PodsIn {
            ctx,
            config: self.config.clone(),
            local_api: local_api.clone(),
            shadow_api: shadow_api.clone(),
            local_store,
            shadow_store,
            remote_store,
            queue: Queue::new(self.metrics.clone()),
            backoff: KeyedBackoff::default(),
            metrics: self.metrics.clone(),
            restarts: self.restarts.clone(),
        });
        let mut tasks = JoinSet::new();
        let (s1, s2, s3) = (shared.clone(), shared.clone(), shared.clone());
        tasks.spawn(watch(
            local_api,
            watcher::Config::default().fields(&self.node_selector()),
            local_writer,
            move |event: watcher::Event<Pod>| s1.on_event(event),
        ));
        // The caches of the provider's objects keep what `forge::plan` reads (metadata and
        // status): the pod specs are the bulk of them, and the local pod has the same spec.
        tasks.spawn(watch_slim(
            shadow_api,
            watcher::Config::default().labels(&owned),
            shadow_writer,
            |shadow: &mut ShadowPod| shadow.spec.pod = None,
            move |event: watcher::Event<ShadowPod>| s2.on_event(event),
        ));
        tasks.spawn(watch_slim(
            remote_pods,
            watcher::Config::default().labels(&owned),
            remote_writer,
            |pod: &mut Pod| pod.spec = None,
            move |event: watcher::Event<Pod>| s3.on_event(event),
        ));
        for _ in 0..self.config.workers {
            tasks.spawn(work(shared.clone()));
        }
        lock(&self.active).insert(pair.local().to_owned());
        self.namespaces.insert(pair, tasks);
        debug!(%pair, "pod reflection started");
        Ok(())
    }

    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.namespaces.stop(pair) {
            lock(&self.active).remove(pair.local());
            lock(&self.offloaded).remove(pair.local());
            debug!(%pair, "pod reflection stopped");
            let deleted =
                delete_offloaded(&self.clusters.local, pair.local(), &self.config.node_name)
                    .await?;
            if deleted > 0 {
                info!(%pair, deleted, "namespace no longer offloaded here: deleted its offloaded pods so that their controllers recreate them locally");
            }
        }
        Ok(())
    }
}

/// The pod reflection of one namespace pair.
struct PodsIn {
    ctx: ForgeContext,
    config: PodReflectorConfig,
    local_api: Api<Pod>,
    shadow_api: Api<ShadowPod>,
    local_store: Store<Pod>,
    shadow_store: Store<ShadowPod>,
    remote_store: Store<Pod>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
    restarts: RestartMap,
}

impl PodsIn {
    fn on_event<O: kube::Resource>(&self, event: watcher::Event<O>) {
        match event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                self.queue.add(o.meta().name.clone().unwrap_or_default());
            }
            watcher::Event::InitDone => {
                let names = self
                    .local_store
                    .state()
                    .iter()
                    .map(|p| p.name_any())
                    .chain(self.shadow_store.state().iter().map(|s| s.name_any()))
                    .chain(self.remote_store.state().iter().map(|p| p.name_any()))
                    .collect::<HashSet<_>>();
                for name in names {
                    self.queue.add(name);
                }
            }
            watcher::Event::Init => {}
        }
    }

    fn restart_key(&self, name: &str) -> String {
        format!("{}/{name}", self.ctx.local_namespace)
    }

    async fn delete_shadow(&self, shadow: &ShadowPod) -> Result<Outcome> {
        let name = shadow.name_any();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: shadow.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.shadow_api.delete(&name, &params).await {
            Ok(_) => Ok(Outcome::Written),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Outcome::Unchanged),
            Err(e) => Err(Error::kube(format!(
                "deleting ShadowPod {}/{name} in the remote cluster",
                self.ctx.remote_namespace
            ))(e)),
        }
    }

    async fn write_status(
        &self,
        local: &Pod,
        status: &k8s_openapi::api::core::v1::PodStatus,
    ) -> Result<Outcome> {
        if forge::status_matches(local.status.as_ref(), status) {
            return Ok(Outcome::Unchanged);
        }
        let name = local.name_any();
        debug!(pod = %name, namespace = %self.ctx.local_namespace, "writing the local status");
        self.local_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&forge::status_patch(status)),
            )
            .await
            .map_err(Error::kube(format!(
                "writing the status of pod {}/{name}",
                self.ctx.local_namespace
            )))?;
        Ok(Outcome::Written)
    }

    async fn reconcile(&self, name: &str) -> Result<Outcome> {
        let local = self
            .local_store
            .get(&ObjectRef::new(name).within(&self.ctx.local_namespace));
        let shadow = self
            .shadow_store
            .get(&ObjectRef::new(name).within(&self.ctx.remote_namespace));
        let remote = self
            .remote_store
            .get(&ObjectRef::new(name).within(&self.ctx.remote_namespace));
        let key = self.restart_key(name);
        let previous = lock(&self.restarts).get(&key).cloned();
        let action = forge::plan(
            local.as_deref(),
            shadow.as_deref(),
            remote.as_deref(),
            previous.as_ref(),
            &self.config.remote_cidrs,
            self.config.node_ip,
        );
        if local.is_none() {
            lock(&self.restarts).remove(&key);
        }
        match (action, local, shadow) {
            (forge::PodAction::DeleteShadow, _, Some(shadow)) => self.delete_shadow(&shadow).await,
            (forge::PodAction::FinalizeLocal, Some(local), _) => {
                lock(&self.restarts).remove(&key);
                force_delete(&self.local_api, &local).await?;
                Ok(Outcome::Written)
            }
            (
                forge::PodAction::Reflect {
                    label,
                    create_shadow,
                    status,
                    restarts,
                },
                Some(local),
                _,
            ) => {
                if let Some(restarts) = restarts {
                    if previous.as_ref() != Some(&restarts) {
                        debug!(pod = %name, namespace = %self.ctx.local_namespace, ?previous, ?restarts, "restart accounting changed");
                    }
                    lock(&self.restarts).insert(key, restarts);
                }
                // Independent writes (local label, remote ShadowPod): in parallel.
                let label = async {
                    if label {
                        self.label(name).await?;
                    }
                    Ok::<_, Error>(())
                };
                let create = async {
                    if create_shadow {
                        self.create_shadow(&local).await?;
                    }
                    Ok(())
                };
                tokio::try_join!(label, create)?;
                if let Some(status) = status {
                    self.write_status(&local, &status).await?;
                }
                Ok(Outcome::Written)
            }
            // Nothing to do, or waiting for the provider to tear the remote pod down.
            _ => Ok(Outcome::Unchanged),
        }
    }

    async fn label(&self, name: &str) -> Result<()> {
        let patch = serde_json::json!({"metadata": {"labels": {offloading::SHADOW_POD: TRUE}}});
        self.local_api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "labelling pod {}/{name} as offloaded",
                self.ctx.local_namespace
            )))?;
        Ok(())
    }

    async fn create_shadow(&self, local: &Pod) -> Result<()> {
        let name = local.name_any();
        let twin = forge::remote_shadow_pod(local, &self.ctx, &self.config.node_name);
        match self.shadow_api.create(&PostParams::default(), &twin).await {
            Ok(_) => {
                debug!(pod = %name, namespace = %self.ctx.local_namespace, "ShadowPod created");
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Not in our store (filtered by the ownership labels): someone else's?
                let existing =
                    self.shadow_api
                        .get_opt(&name)
                        .await
                        .map_err(Error::kube(format!(
                            "reading ShadowPod {}/{name}",
                            self.ctx.remote_namespace
                        )))?;
                if existing.is_some_and(|s| !self.is_owned(&s)) {
                    return Err(Error::NotManaged {
                        kind: "ShadowPod".to_owned(),
                        namespace: self.ctx.remote_namespace.clone(),
                        name,
                    });
                }
                Ok(())
            }
            Err(e) => Err(Error::kube(format!(
                "creating ShadowPod {}/{name} in the remote cluster",
                self.ctx.remote_namespace
            ))(e)),
        }
    }

    fn is_owned(&self, shadow: &ShadowPod) -> bool {
        let labels = shadow.labels();
        labels.get(ORIGIN).map(String::as_str) == Some(self.ctx.local_cluster.as_str())
            && labels.get(DESTINATION).map(String::as_str) == Some(self.ctx.remote_cluster.as_str())
    }
}

#[async_trait]
impl Handler for PodsIn {
    fn describe(&self) -> String {
        format!("Pod in {}", self.ctx.local_namespace)
    }

    async fn ready(&self) {
        let _ = self.local_store.wait_until_ready().await;
        let _ = self.shadow_store.wait_until_ready().await;
        let _ = self.remote_store.wait_until_ready().await;
    }

    async fn handle(&self, key: &str) -> Result<Outcome> {
        self.reconcile(key).await
    }

    async fn report(&self, key: &str, error: &Error) {
        debug!(pod = %key, namespace = %self.ctx.local_namespace, %error, "pod reflection failed");
    }

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}
