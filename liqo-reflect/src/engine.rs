//! The generic reflection engine.

use std::{
    collections::{BTreeMap, HashMap, hash_map::DefaultHasher},
    fmt::Debug,
    hash::{Hash, Hasher},
    marker::PhantomData,
    sync::Arc,
};

use async_trait::async_trait;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::{
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::{
    ids::{ClusterId, NamespacePair},
    labels::reflection::{ALLOW_REFLECTION, DESTINATION, FIELD_MANAGER, ORIGIN, SKIP_REFLECTION},
    runtime::KeyedBackoff,
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::task::JoinSet;
use tracing::debug;

use crate::{
    Error, Reflector, Result,
    forge::{Forge, ForgeContext},
    metrics::{ReflectorMetrics, Registry},
    queue::Queue,
    worker::{Handler, NamespaceTasks, Outcome, watch, work},
};

/// Annotation on every twin with a hash of what the engine applied, so that an unchanged
/// object is not written again. An addition of liqo-rs.
pub const CONTENT_HASH_ANNOTATION: &str = "reflection.liqo.io/content-hash";

/// Which objects a reflector reflects, as upstream's `ReflectionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Everything except objects annotated `liqo.io/skip-reflection: "true"`.
    #[default]
    DenyList,
    /// Only objects annotated `liqo.io/allow-reflection: "true"`.
    AllowList,
}

impl Policy {
    fn allows(self, annotations: &BTreeMap<String, String>) -> bool {
        let set = |key: &str| annotations.get(key).is_some_and(|v| v == "true");
        match self {
            Self::DenyList => !set(SKIP_REFLECTION),
            Self::AllowList => set(ALLOW_REFLECTION),
        }
    }
}

/// Settings of one reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorConfig {
    /// Concurrent workers per namespace pair (upstream's default is 3). 0 disables the
    /// reflector.
    pub workers: usize,
    /// Which objects to reflect.
    pub policy: Policy,
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        Self {
            workers: 3,
            policy: Policy::DenyList,
        }
    }
}

/// Everything a reflector needs to know about the two clusters.
#[derive(Clone)]
pub struct Clusters {
    /// Client of the local cluster.
    pub local: Client,
    /// Client of the remote cluster (with the identity the provider granted).
    pub remote: Client,
    /// Id of the local cluster (value of the `offloading.liqo.io/origin` label on twins).
    pub local_id: ClusterId,
    /// Id of the remote cluster (value of the `offloading.liqo.io/destination` label).
    pub remote_id: ClusterId,
}

impl Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .finish_non_exhaustive()
    }
}

/// Bound on the kinds the generic engine reflects.
pub trait Reflectable:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Reflectable for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A [`Reflector`] for any namespaced kind `K`, driven by a pure [`Forge`].
///
/// For each namespace pair it watches `K` in the local namespace and in the remote one (each
/// into a store, re-listing after a reconnection), and queues the name of every object that
/// changes on either side. Workers then make the remote twin match what the forge says:
/// server-side apply (field manager `reflection.liqo.io`) when it differs, deletion (with a UID
/// precondition) when the local object is gone or no longer reflected. A remote object without
/// the engine's ownership labels is never modified or deleted: the conflict is reported as a
/// `FailedReflection` Event on the local object. Failures are retried with a per-object
/// exponential backoff.
pub struct GenericReflector<K: Reflectable, F: Forge<K, R>, R: Reflectable = K> {
    name: String,
    forge: Arc<F>,
    clusters: Clusters,
    config: ReflectorConfig,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
    namespaces: NamespaceTasks,
    _kind: PhantomData<fn() -> (K, R)>,
}

impl<K: Reflectable, F: Forge<K, R>, R: Reflectable> Debug for GenericReflector<K, F, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericReflector")
            .field("name", &self.name)
            .field("clusters", &self.clusters)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K: Reflectable, F: Forge<K, R>, R: Reflectable> GenericReflector<K, F, R> {
    /// A reflector called `name` (e.g. `configmaps`, used in metrics and Events).
    pub fn new(
        name: impl Into<String>,
        forge: F,
        clusters: Clusters,
        config: ReflectorConfig,
        registry: &Registry,
    ) -> Self {
        let name = name.into();
        let recorder = Recorder::new(
            clusters.local.clone(),
            Reporter {
                controller: "liqo-reflection".to_owned(),
                instance: Some(format!("{}-{name}", clusters.remote_id)),
            },
        );
        Self {
            metrics: registry.reflector(&name),
            name,
            forge: Arc::new(forge),
            clusters,
            config,
            recorder,
            namespaces: NamespaceTasks::default(),
            _kind: PhantomData,
        }
    }
}

#[async_trait]
impl<K: Reflectable, F: Forge<K, R>, R: Reflectable> Reflector for GenericReflector<K, F, R> {
    fn name(&self) -> &str {
        &self.name
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
        let local_api: Api<K> = Api::namespaced(self.clusters.local.clone(), pair.local());
        let remote_api: Api<R> = Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let (local_store, local_writer) = reflector::store();
        let (remote_store, remote_writer) = reflector::store();
        let shared = Arc::new(Namespaced {
            kind: R::kind(&()).into_owned(),
            ctx,
            forge: self.forge.clone(),
            policy: self.config.policy,
            local_api: local_api.clone(),
            remote_api: remote_api.clone(),
            local_store,
            remote_store,
            queue: Queue::new(self.metrics.clone()),
            backoff: KeyedBackoff::default(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
        });
        let mut tasks = JoinSet::new();
        let (local_ns, remote_ns) = (shared.clone(), shared.clone());
        tasks.spawn(watch(
            local_api,
            watcher::Config::default(),
            local_writer,
            move |event| {
                local_ns.on_event(Side::Local, event);
            },
        ));
        tasks.spawn(watch(
            remote_api,
            watcher::Config::default(),
            remote_writer,
            move |event| {
                remote_ns.on_event(Side::Remote, event);
            },
        ));
        for _ in 0..self.config.workers {
            tasks.spawn(work(shared.clone()));
        }
        debug!(reflector = %self.name, %pair, "namespace started");
        self.namespaces.insert(pair, tasks);
        Ok(())
    }

    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.namespaces.stop(pair) {
            debug!(reflector = %self.name, %pair, "namespace stopped");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Remote,
}

/// The state shared by the tasks of one reflector in one namespace pair.
struct Namespaced<K: Reflectable, F: Forge<K, R>, R: Reflectable> {
    kind: String,
    ctx: ForgeContext,
    forge: Arc<F>,
    policy: Policy,
    local_api: Api<K>,
    remote_api: Api<R>,
    local_store: Store<K>,
    remote_store: Store<R>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
}

#[async_trait]
impl<K: Reflectable, F: Forge<K, R>, R: Reflectable> Handler for Namespaced<K, F, R> {
    fn describe(&self) -> String {
        format!("{} in {}", self.kind, self.ctx.local_namespace)
    }

    async fn ready(&self) {
        // Both stores filled, so the first decisions see both sides.
        let _ = self.local_store.wait_until_ready().await;
        let _ = self.remote_store.wait_until_ready().await;
    }

    async fn handle(&self, key: &str) -> Result<Outcome> {
        self.reconcile(key).await
    }

    async fn report(&self, key: &str, error: &Error) {
        self.report_failure(key, error).await;
    }

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}

impl<K: Reflectable, F: Forge<K, R>, R: Reflectable> Namespaced<K, F, R> {
    /// Queues what a watch event of `side` touches.
    fn on_event<O: Resource>(&self, side: Side, event: watcher::Event<O>) {
        match event {
            watcher::Event::Apply(obj)
            | watcher::Event::Delete(obj)
            | watcher::Event::InitApply(obj) => {
                self.enqueue(side, &obj.meta().name.clone().unwrap_or_default());
            }
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init => {}
        }
    }

    /// Queues the local name an object of `side` stands for.
    fn enqueue(&self, side: Side, name: &str) {
        let key = match side {
            Side::Local => name.to_owned(),
            Side::Remote => self.forge.local_name(name, &self.ctx),
        };
        self.queue.add(key);
    }

    /// Queues every object either side knows: after a (re)list, objects deleted while the
    /// watch was down only show up as missing.
    fn enqueue_all(&self) {
        for obj in self.local_store.state() {
            self.enqueue(Side::Local, &obj.name_any());
        }
        for obj in self.remote_store.state() {
            self.enqueue(Side::Remote, &obj.name_any());
        }
    }

    fn is_owned(&self, remote: &R) -> bool {
        if !self.forge.manages(remote) {
            return false;
        }
        let labels = remote.labels();
        labels.get(ORIGIN).map(String::as_str) == Some(self.ctx.local_cluster.as_str())
            && labels.get(DESTINATION).map(String::as_str) == Some(self.ctx.remote_cluster.as_str())
    }

    /// The twin to apply for `local`, with namespace, ownership labels and content hash.
    fn desired(&self, local: &K) -> Result<Option<R>> {
        if !self.policy.allows(local.annotations()) {
            return Ok(None);
        }
        let Some(mut twin) = self.forge.remote(local, &self.ctx) else {
            return Ok(None);
        };
        let name = twin
            .meta()
            .name
            .clone()
            .unwrap_or_else(|| self.forge.remote_name(&local.name_any(), &self.ctx));
        let meta = twin.meta_mut();
        meta.name = Some(name);
        meta.namespace = Some(self.ctx.remote_namespace.clone());
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(ORIGIN.to_owned(), self.ctx.local_cluster.to_string());
        labels.insert(DESTINATION.to_owned(), self.ctx.remote_cluster.to_string());
        let hash = content_hash(&twin)?;
        twin.meta_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(CONTENT_HASH_ANNOTATION.to_owned(), hash);
        Ok(Some(twin))
    }

    /// Writes to the local object's status what the forge derives from the remote twin, when
    /// it is not there yet.
    async fn propagate_status(&self, local: &K, remote: &R) -> Result<()> {
        let Some(status) = self.forge.local_status(local, remote, &self.ctx) else {
            return Ok(());
        };
        let current = serde_json::to_value(local).map_err(|source| Error::Serialization {
            what: "a local object".to_owned(),
            source,
        })?;
        let current = current
            .get("status")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if contains(&current, &status) {
            return Ok(());
        }
        let name = local.name_any();
        self.local_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "status": status })),
            )
            .await
            .map_err(Error::kube(format!(
                "writing the status of {} {}/{name}",
                K::kind(&()),
                self.ctx.local_namespace
            )))?;
        Ok(())
    }

    /// Makes the remote twin of the local object `name` what it should be.
    async fn reconcile(&self, name: &str) -> Result<Outcome> {
        let local = self
            .local_store
            .get(&ObjectRef::new(name).within(&self.ctx.local_namespace));
        let remote_name = self.forge.remote_name(name, &self.ctx);
        let remote = self
            .remote_store
            .get(&ObjectRef::new(&remote_name).within(&self.ctx.remote_namespace));
        let desired = match &local {
            Some(local) => self.desired(local)?,
            None => None,
        };
        match (desired, remote) {
            (Some(twin), remote) => {
                if let Some(remote) = &remote {
                    if !self.is_owned(remote) {
                        return Err(Error::NotManaged {
                            kind: self.kind.clone(),
                            namespace: self.ctx.remote_namespace.clone(),
                            name: remote_name,
                        });
                    }
                    if let Some(local) = &local {
                        self.propagate_status(local, remote).await?;
                    }
                    if is_up_to_date(&twin, remote)? {
                        return Ok(Outcome::Unchanged);
                    }
                }
                self.remote_api
                    .patch(
                        &remote_name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&twin),
                    )
                    .await
                    .map_err(Error::kube(format!(
                        "applying {} {}/{remote_name} in the remote cluster",
                        self.kind, self.ctx.remote_namespace
                    )))?;
                Ok(Outcome::Written)
            }
            (None, Some(remote)) if self.is_owned(&remote) => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: remote.uid(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match self.remote_api.delete(&remote_name, &params).await {
                    Ok(_) => Ok(Outcome::Written),
                    // Already gone, or replaced by another object with the same name.
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                        Ok(Outcome::Unchanged)
                    }
                    Err(e) => Err(Error::kube(format!(
                        "deleting {} {}/{remote_name} in the remote cluster",
                        self.kind, self.ctx.remote_namespace
                    ))(e)),
                }
            }
            (None, _) => Ok(Outcome::Unchanged),
        }
    }

    /// Records a failure as a Warning Event on the local object, if it still exists.
    async fn report_failure(&self, name: &str, error: &Error) {
        let Some(local) = self
            .local_store
            .get(&ObjectRef::new(name).within(&self.ctx.local_namespace))
        else {
            return;
        };
        let event = KubeEvent {
            type_: EventType::Warning,
            reason: "FailedReflection".to_owned(),
            note: Some(format!(
                "reflection to cluster {} failed: {error}",
                self.ctx.remote_cluster
            )),
            action: "Reflect".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &local.object_ref(&())).await {
            debug!(error = %e, "cannot record a reflection event");
        }
    }
}

fn content_hash<K: Serialize>(twin: &K) -> Result<String> {
    let json = serde_json::to_string(twin).map_err(|source| Error::Serialization {
        what: "a twin object".to_owned(),
        source,
    })?;
    let mut hasher = DefaultHasher::new();
    json.hash(&mut hasher);
    Ok(format!("{:016x}", hasher.finish()))
}

/// The twin is up to date when the remote object carries the same content hash and still has
/// every field the engine sets (someone may have changed it remotely).
fn is_up_to_date<R: Reflectable>(twin: &R, remote: &R) -> Result<bool> {
    if twin.annotations().get(CONTENT_HASH_ANNOTATION)
        != remote.annotations().get(CONTENT_HASH_ANNOTATION)
    {
        return Ok(false);
    }
    let to_json = |obj: &R| {
        serde_json::to_value(obj).map_err(|source| Error::Serialization {
            what: "a twin object".to_owned(),
            source,
        })
    };
    let (mut want, got) = (to_json(twin)?, to_json(remote)?);
    if let Some(meta) = want.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.retain(|k, _| k == "labels" || k == "annotations");
    }
    Ok(contains(&got, &want))
}

fn contains(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| contains(gv, v))),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => got == want,
    }
}

/// Runs every reflector of one peering and starts or stops them per namespace pair.
///
/// ```no_run
/// # async fn run(local: kube::Client, remote: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_core::ids::NamespacePair;
/// use liqo_reflect::{Clusters, ReflectionManager};
///
/// let manager = ReflectionManager::builder(Clusters {
///     local,
///     remote,
///     local_id: "rome".parse().unwrap(),
///     remote_id: "milan".parse().unwrap(),
/// })
/// .with_default_reflectors()
/// .build();
/// manager.start_namespace(&NamespacePair::new("demo", "demo-rome").unwrap()).await?;
/// println!("{}", manager.metrics().render());
/// # Ok(()) }
/// ```
pub struct ReflectionManager {
    reflectors: Vec<Arc<dyn Reflector>>,
    registry: Registry,
}

fn names(reflectors: &[Arc<dyn Reflector>]) -> Vec<&str> {
    reflectors.iter().map(|r| r.name()).collect()
}

impl Debug for ReflectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReflectionManager")
            .field("reflectors", &names(&self.reflectors))
            .finish_non_exhaustive()
    }
}

impl Debug for ReflectionManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReflectionManagerBuilder")
            .field("clusters", &self.clusters)
            .field("reflectors", &names(&self.reflectors))
            .finish_non_exhaustive()
    }
}

impl ReflectionManager {
    /// Starts building a manager for the peering between the two clusters.
    pub fn builder(clusters: Clusters) -> ReflectionManagerBuilder {
        ReflectionManagerBuilder {
            clusters,
            registry: Registry::default(),
            reflectors: Vec::new(),
            configs: HashMap::new(),
        }
    }

    /// Starts every reflector in a namespace pair (idempotent).
    pub async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
        for reflector in &self.reflectors {
            reflector.start_namespace(pair).await?;
        }
        Ok(())
    }

    /// Stops every reflector in a namespace pair; twins already written stay.
    pub async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        for reflector in &self.reflectors {
            reflector.stop_namespace(pair).await?;
        }
        Ok(())
    }

    /// The reflectors, in the order they were added.
    pub fn reflectors(&self) -> &[Arc<dyn Reflector>] {
        &self.reflectors
    }

    /// The metrics of every reflector.
    pub fn metrics(&self) -> &Registry {
        &self.registry
    }
}

/// Builder of a [`ReflectionManager`].
pub struct ReflectionManagerBuilder {
    clusters: Clusters,
    registry: Registry,
    reflectors: Vec<Arc<dyn Reflector>>,
    configs: HashMap<String, ReflectorConfig>,
}

impl ReflectionManagerBuilder {
    /// The clusters the reflectors connect (to build a reflector of one's own).
    #[must_use]
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// Settings of a built-in reflector (`configmaps`, `secrets`, `services`, `ingresses`,
    /// `events`, `serviceaccounts`, `endpointslices`, `persistentvolumeclaims`);
    /// call before [`with_default_reflectors`](Self::with_default_reflectors).
    #[must_use]
    pub fn config(mut self, reflector: &str, config: ReflectorConfig) -> Self {
        self.configs.insert(reflector.to_owned(), config);
        self
    }

    /// Adds the built-in reflectors: ConfigMaps, Secrets, Services, Ingresses, ServiceAccount
    /// tokens and PersistentVolumeClaims of the virtual storage class `liqo` (local to remote),
    /// and Events (remote to local).
    #[must_use]
    pub fn with_default_reflectors(self) -> Self {
        use crate::forge::{ConfigMapForge, IngressForge, SecretForge, ServiceForge};
        use k8s_openapi::api::{
            core::v1::{ConfigMap, Secret, Service},
            networking::v1::Ingress,
        };
        let config = |name: &str| self.configs.get(name).copied().unwrap_or_default();
        let events = crate::event::EventReflector::new(
            self.clusters.clone(),
            config("events"),
            &self.registry,
        );
        let claims = crate::storage::PersistentVolumeClaimReflector::new(
            self.clusters.clone(),
            config("persistentvolumeclaims"),
            &self.registry,
        );
        let service_accounts = crate::serviceaccount::ServiceAccountReflector::new(
            self.clusters.clone(),
            config("serviceaccounts"),
            &self.registry,
        );
        self.generic::<ConfigMap, _, ConfigMap>("configmaps", ConfigMapForge)
            .generic::<Secret, _, Secret>("secrets", SecretForge)
            .generic::<Service, _, Service>("services", ServiceForge)
            .generic::<Ingress, _, Ingress>("ingresses", IngressForge)
            .reflector(Arc::new(events))
            .reflector(Arc::new(service_accounts))
            .reflector(Arc::new(claims))
    }

    /// Adds the EndpointSlice reflector: local EndpointSlices become ShadowEndpointSlices in
    /// the remote namespace (see [`EndpointSliceForge`](crate::forge::EndpointSliceForge));
    /// the provider materializes them with
    /// [`ShadowEndpointSliceForge`](crate::forge::ShadowEndpointSliceForge). 10 workers unless
    /// configured otherwise, as upstream.
    #[must_use]
    pub fn with_endpoint_slices(mut self, forge: crate::forge::EndpointSliceForge) -> Self {
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        use liqo_core::api::offloading::v1beta1::ShadowEndpointSlice;
        self.configs
            .entry("endpointslices".to_owned())
            .or_insert(ReflectorConfig {
                workers: 10,
                ..ReflectorConfig::default()
            });
        self.generic::<EndpointSlice, _, ShadowEndpointSlice>("endpointslices", forge)
    }

    /// Adds a [`GenericReflector`] for local kind `K` (twin kind `R`) with forge `forge`.
    #[must_use]
    pub fn generic<K: Reflectable, F: Forge<K, R>, R: Reflectable>(
        mut self,
        name: &str,
        forge: F,
    ) -> Self {
        let config = self.configs.get(name).copied().unwrap_or_default();
        let reflector: GenericReflector<K, F, R> =
            GenericReflector::new(name, forge, self.clusters.clone(), config, &self.registry);
        self.reflectors.push(Arc::new(reflector));
        self
    }

    /// Adds any [`Reflector`] (for example a third party's).
    #[must_use]
    pub fn reflector(mut self, reflector: Arc<dyn Reflector>) -> Self {
        self.reflectors.push(reflector);
        self
    }

    /// The metrics registry, to create a custom reflector's metrics in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Builds the manager.
    pub fn build(self) -> ReflectionManager {
        ReflectionManager {
            reflectors: self.reflectors,
            registry: self.registry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn policies() {
        let none = BTreeMap::new();
        let skip = BTreeMap::from([(SKIP_REFLECTION.to_owned(), "true".to_owned())]);
        let allow = BTreeMap::from([(ALLOW_REFLECTION.to_owned(), "true".to_owned())]);
        assert!(Policy::DenyList.allows(&none));
        assert!(!Policy::DenyList.allows(&skip));
        assert!(!Policy::AllowList.allows(&none));
        assert!(Policy::AllowList.allows(&allow));
    }

    #[test]
    fn up_to_date_needs_the_same_hash_and_the_applied_fields() {
        let mut twin = ConfigMap::default();
        twin.metadata.name = Some("a".into());
        twin.metadata.annotations = Some(BTreeMap::from([(
            CONTENT_HASH_ANNOTATION.into(),
            "h1".into(),
        )]));
        twin.data = Some(BTreeMap::from([("k".into(), "v".into())]));
        let mut remote = twin.clone();
        remote.metadata.uid = Some("u".into());
        remote.metadata.resource_version = Some("7".into());
        assert!(is_up_to_date(&twin, &remote).unwrap());
        // Changed remotely behind our back.
        remote.data = Some(BTreeMap::from([("k".into(), "changed".into())]));
        assert!(!is_up_to_date(&twin, &remote).unwrap());
        // A new local version.
        let mut newer = twin.clone();
        newer.metadata.annotations = Some(BTreeMap::from([(
            CONTENT_HASH_ANNOTATION.into(),
            "h2".into(),
        )]));
        assert!(!is_up_to_date(&newer, &twin).unwrap());
    }
}
