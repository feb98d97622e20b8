//! Reflection of PersistentVolumeClaims, and the local PersistentVolumes standing for their
//! remote twins: the part of Liqo's storage fabric that lets offloaded pods use volumes.
//!
//! A consumer asks for storage on a provider with a PersistentVolumeClaim of the *virtual*
//! storage class ([`DEFAULT_VIRTUAL_STORAGE_CLASS`], `liqo`, a `WaitForFirstConsumer` class).
//! When the scheduler puts a pod using it on a virtual node, it writes the node into the
//! claim's [`SELECTED_NODE_ANNOTATION`]. The [`PersistentVolumeClaimReflector`] of the provider
//! that node stands for then:
//!
//! 1. applies a twin claim (same name) in the remote twin namespace, with the provider's real
//!    storage class (the local [`REMOTE_STORAGE_CLASS`] annotation, else the class the twin
//!    already has, else the one set with
//!    [`remote_storage_class`](PersistentVolumeClaimReflector::remote_storage_class), else
//!    none: the provider's default class), the access modes of the [`REMOTE_ACCESS_MODES`]
//!    annotation (else the local ones), and the local volume mode and resources;
//! 2. creates a local PersistentVolume named [`volume_name`]`(<local claim uid>)`, pre-bound
//!    (`claimRef`) to the local claim, of the virtual class, with reclaim policy `Delete`, a
//!    `local` source under [`VOLUME_PATH_PREFIX`] and a *required* node affinity to the virtual
//!    node. kube-controller-manager binds the claim to it, and every pod using the claim can
//!    only go to that virtual node, i.e. to the cluster where the data lives (data gravity);
//! 3. when the local claim is deleted, deletes the remote twin and the local volume.
//!
//! The volume is created as soon as the twin exists, without waiting for the twin to be
//! `Bound`: a provider class in `WaitForFirstConsumer` mode only binds the twin once the
//! offloaded pod exists remotely, and the local pod is only bound to the virtual node once its
//! claim is bound, so waiting would deadlock. Its capacity is the twin's when the twin is
//! already bound, the local request otherwise.
//!
//! As everywhere in the reflection, a remote claim without the ownership labels
//! (`offloading.liqo.io/origin` and `offloading.liqo.io/destination`) is never modified nor
//! deleted; the conflict is recorded as a `FailedReflection` Event on the local claim. A twin
//! is only deleted when its local claim is gone, never because a claim stopped matching (its
//! data may be in use), as upstream.
//!
//! Differences from upstream Liqo: upstream only handles claims annotated by the PV controller
//! with the `liqo.io/storage` provisioner and looks up the StorageClass; here the claim's class
//! name and the selected node are enough, so no StorageClass object is required. Upstream pins
//! the volume to every virtual node of the provider (`liqo.io/remote-cluster-id`); here the
//! affinity also requires `kubernetes.io/hostname` of the selected node when that node carries
//! it. The volume's access modes are the local claim's (as upstream), so that it can bind to
//! the local claim even when [`REMOTE_ACCESS_MODES`] changes them remotely.

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use async_trait::async_trait;
use k8s_openapi::{
    api::core::v1::{
        LocalVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
        ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
        PersistentVolumeSpec, VolumeNodeAffinity, VolumeResourceRequirements,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::{
    ids::{ClusterId, NamespacePair},
    labels::{
        self,
        core::{REMOTE_CLUSTER_ID, TYPE, TYPE_VIRTUAL_NODE},
        reflection::{DESTINATION, FIELD_MANAGER, ORIGIN},
        storage::{PROVISIONER, REMOTE_ACCESS_MODES, REMOTE_STORAGE_CLASS},
    },
    runtime::KeyedBackoff,
};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::{
    Error, Reflector, Result,
    engine::{Clusters, ReflectorConfig},
    metrics::{ReflectorMetrics, Registry},
    queue::Queue,
    worker::{Handler, NamespaceTasks, Outcome, watch, work},
};

/// Name of the reflector (in metrics and Events).
pub const REFLECTOR_NAME: &str = "persistentvolumeclaims";

/// Default name of the virtual storage class (upstream's `storage.virtualStorageClassName`).
pub const DEFAULT_VIRTUAL_STORAGE_CLASS: &str = "liqo";

/// Annotation the scheduler sets on a `WaitForFirstConsumer` claim with the node chosen for the
/// first pod using it (Kubernetes-defined).
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";
/// Legacy spelling of [`SELECTED_NODE_ANNOTATION`], still honoured as upstream does.
pub const ALPHA_SELECTED_NODE_ANNOTATION: &str = "volume.alpha.kubernetes.io/selected-node";
/// Legacy annotation naming a claim's storage class; it takes precedence over
/// `spec.storageClassName`, as in Kubernetes.
pub const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
/// Annotation naming the provisioner of a PersistentVolume (Kubernetes-defined). The local
/// volumes carry [`PROVISIONER`] (`liqo.io/storage`), so that kube-controller-manager leaves
/// their deletion to Liqo.
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";
/// Node label with the node's host name (Kubernetes-defined), used in the volume's affinity.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Label, on a local volume, with the namespace of the remote claim it stands for (an addition
/// of liqo-rs).
pub const REMOTE_PVC_NAMESPACE_LABEL: &str = "storage.liqo.io/remote-pvc-namespace";
/// Label, on a local volume, with the UID of the remote claim it stands for (an addition of
/// liqo-rs; a UID always fits in a label value, a name may not).
pub const REMOTE_PVC_UID_LABEL: &str = "storage.liqo.io/remote-pvc-uid";
/// Annotation, on a local volume, with the name of the remote claim it stands for (an addition
/// of liqo-rs).
pub const REMOTE_PVC_NAME_ANNOTATION: &str = "storage.liqo.io/remote-pvc-name";
/// Annotation, on a remote claim, with the UID of the local claim it reflects (an addition of
/// liqo-rs): a twin left by an earlier local claim of the same name is deleted, not reused.
pub const LOCAL_PVC_UID_ANNOTATION: &str = "storage.liqo.io/local-pvc-uid";

/// Directory under which the `local` source of every local volume points, as
/// `<prefix>/<remote cluster id>/<remote namespace>/<claim name>`. Nothing is ever mounted
/// from it: the only pods that can use the volume run on a virtual node, whose kubelet offloads
/// them instead of mounting anything; the path only tells a human where the data really is.
pub const VOLUME_PATH_PREFIX: &str = "/var/lib/liqo/remote-volumes";

/// Annotations of a local claim never copied to its twin: those written by Kubernetes
/// controllers about the *local* binding and scheduling, and the Liqo annotations that steer
/// this reflection. (`liqo.io/skip-reflection`, `liqo.io/allow-reflection` and
/// `kubectl.kubernetes.io/last-applied-configuration` are dropped as for every kind, see
/// [`NOT_REFLECTED_ANNOTATIONS`](crate::forge::NOT_REFLECTED_ANNOTATIONS).)
pub const NOT_COPIED_ANNOTATIONS: [&str; 10] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    SELECTED_NODE_ANNOTATION,
    ALPHA_SELECTED_NODE_ANNOTATION,
    BETA_STORAGE_CLASS_ANNOTATION,
    REMOTE_STORAGE_CLASS,
    REMOTE_ACCESS_MODES,
    LOCAL_PVC_UID_ANNOTATION,
];

/// The access modes Kubernetes knows, accepted in [`REMOTE_ACCESS_MODES`].
pub const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

const KIND: &str = "PersistentVolumeClaim";

/// Name of the local PersistentVolume standing for the twin of the local claim with UID
/// `claim_uid` (`pvc-<uid>`, the name dynamic provisioners use, as upstream).
///
/// ```
/// assert_eq!(liqo_reflect::storage::volume_name("6a1f"), "pvc-6a1f");
/// ```
pub fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// Reflects PersistentVolumeClaims of the virtual storage class scheduled on a virtual node of
/// the remote cluster, and creates the local PersistentVolumes that bind them (see the
/// [module documentation](self)).
///
/// The reflection policy of the [`ReflectorConfig`] is ignored (upstream's `CustomLiqo` type):
/// which claims are reflected is decided by their class and selected node only.
///
/// ```no_run
/// # async fn run(clusters: liqo_reflect::Clusters) -> liqo_reflect::Result<()> {
/// use liqo_core::ids::NamespacePair;
/// use liqo_reflect::{Reflector, ReflectorConfig, metrics::Registry, storage::PersistentVolumeClaimReflector};
///
/// let registry = Registry::default();
/// let pvcs = PersistentVolumeClaimReflector::new(clusters, ReflectorConfig::default(), &registry)
///     .virtual_storage_class("liqo")
///     .remote_storage_class("standard");
/// let pair = NamespacePair::new("demo", "demo-rome").expect("valid namespace names");
/// pvcs.start_namespace(&pair).await?;
/// # Ok(()) }
/// ```
pub struct PersistentVolumeClaimReflector {
    clusters: Clusters,
    config: ReflectorConfig,
    virtual_class: String,
    remote_class: Option<String>,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
    namespaces: NamespaceTasks,
}

impl Debug for PersistentVolumeClaimReflector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentVolumeClaimReflector")
            .field("clusters", &self.clusters)
            .field("config", &self.config)
            .field("virtual_class", &self.virtual_class)
            .field("remote_class", &self.remote_class)
            .finish_non_exhaustive()
    }
}

impl PersistentVolumeClaimReflector {
    /// A reflector between the two clusters, with virtual storage class
    /// [`DEFAULT_VIRTUAL_STORAGE_CLASS`] and no configured remote class. Its metrics are
    /// registered in `registry` as [`REFLECTOR_NAME`].
    pub fn new(clusters: Clusters, config: ReflectorConfig, registry: &Registry) -> Self {
        let recorder = Recorder::new(
            clusters.local.clone(),
            Reporter {
                controller: "liqo-reflection".to_owned(),
                instance: Some(format!("{}-{REFLECTOR_NAME}", clusters.remote_id)),
            },
        );
        Self {
            metrics: registry.reflector(REFLECTOR_NAME),
            clusters,
            config,
            virtual_class: DEFAULT_VIRTUAL_STORAGE_CLASS.to_owned(),
            remote_class: None,
            recorder,
            namespaces: NamespaceTasks::default(),
        }
    }

    /// Sets the name of the virtual storage class whose claims are reflected (upstream's
    /// `--virtual-storage-class-name`). Applies to namespaces started afterwards.
    #[must_use]
    pub fn virtual_storage_class(mut self, name: impl Into<String>) -> Self {
        self.virtual_class = name.into();
        self
    }

    /// Sets the provider's storage class given to new twins whose local claim has no
    /// [`REMOTE_STORAGE_CLASS`] annotation (upstream's `--remote-real-storage-class-name`);
    /// without it they get none, i.e. the provider's default class. Applies to namespaces
    /// started afterwards.
    #[must_use]
    pub fn remote_storage_class(mut self, name: impl Into<String>) -> Self {
        self.remote_class = Some(name.into()).filter(|n| !n.is_empty());
        self
    }
}

#[async_trait]
impl Reflector for PersistentVolumeClaimReflector {
    fn name(&self) -> &str {
        REFLECTOR_NAME
    }

    async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.config.workers == 0 || self.namespaces.is_running(pair) {
            return Ok(());
        }
        let local_claims: Api<PersistentVolumeClaim> =
            Api::namespaced(self.clusters.local.clone(), pair.local());
        let remote_claims: Api<PersistentVolumeClaim> =
            Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let volumes: Api<PersistentVolume> = Api::all(self.clusters.local.clone());
        let nodes: Api<Node> = Api::all(self.clusters.local.clone());
        let (local_store, local_writer) = reflector::store();
        let (remote_store, remote_writer) = reflector::store();
        let (volume_store, volume_writer) = reflector::store();
        let (node_store, node_writer) = reflector::store();
        let shared = Arc::new(Namespaced {
            pair: pair.clone(),
            local_id: self.clusters.local_id.clone(),
            remote_id: self.clusters.remote_id.clone(),
            virtual_class: self.virtual_class.clone(),
            remote_class: self.remote_class.clone(),
            remote_claims: remote_claims.clone(),
            volumes: volumes.clone(),
            local_store,
            remote_store,
            volume_store,
            node_store,
            queue: Queue::new(self.metrics.clone()),
            backoff: KeyedBackoff::default(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
        });
        // Only the volumes of this namespace pair, and only the virtual nodes of this provider.
        let volume_selector = labels::selector_string([
            (REMOTE_CLUSTER_ID, self.clusters.remote_id.as_str()),
            (REMOTE_PVC_NAMESPACE_LABEL, pair.remote()),
        ]);
        let node_selector = labels::virtual_nodes_of(&self.clusters.remote_id);

        let mut tasks = JoinSet::new();
        let ns = shared.clone();
        tasks.spawn(watch(
            local_claims,
            watcher::Config::default(),
            local_writer,
            move |event| ns.on_claim_event(event),
        ));
        let ns = shared.clone();
        tasks.spawn(watch(
            remote_claims,
            watcher::Config::default(),
            remote_writer,
            move |event| ns.on_claim_event(event),
        ));
        let ns = shared.clone();
        tasks.spawn(watch(
            volumes,
            watcher::Config::default().labels(&volume_selector),
            volume_writer,
            move |event| ns.on_volume_event(event),
        ));
        let ns = shared.clone();
        tasks.spawn(watch(
            nodes,
            watcher::Config::default().labels_from(&node_selector),
            node_writer,
            move |event| ns.on_node_event(&event),
        ));
        for _ in 0..self.config.workers {
            tasks.spawn(work(shared.clone()));
        }
        debug!(reflector = REFLECTOR_NAME, %pair, "namespace started");
        self.namespaces.insert(pair, tasks);
        Ok(())
    }

    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.namespaces.stop(pair) {
            debug!(reflector = REFLECTOR_NAME, %pair, "namespace stopped");
        }
        Ok(())
    }
}

/// The state shared by the tasks of the reflector in one namespace pair.
struct Namespaced {
    pair: NamespacePair,
    local_id: ClusterId,
    remote_id: ClusterId,
    virtual_class: String,
    remote_class: Option<String>,
    remote_claims: Api<PersistentVolumeClaim>,
    volumes: Api<PersistentVolume>,
    local_store: Store<PersistentVolumeClaim>,
    remote_store: Store<PersistentVolumeClaim>,
    /// Local volumes of this namespace pair (selected by label).
    volume_store: Store<PersistentVolume>,
    /// Local virtual nodes of the remote cluster (selected by label).
    node_store: Store<Node>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
    recorder: Recorder,
}

#[async_trait]
impl Handler for Namespaced {
    fn describe(&self) -> String {
        format!("{KIND} in {}", self.pair.local())
    }

    async fn ready(&self) {
        let _ = self.local_store.wait_until_ready().await;
        let _ = self.remote_store.wait_until_ready().await;
        let _ = self.volume_store.wait_until_ready().await;
        let _ = self.node_store.wait_until_ready().await;
    }

    async fn handle(&self, key: &str) -> Result<Outcome> {
        self.reconcile(key).await
    }

    async fn report(&self, key: &str, error: &Error) {
        let note = format!("reflection to cluster {} failed: {error}", self.remote_id);
        self.publish(key, EventType::Warning, "FailedReflection", note)
            .await;
    }

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}

/// What the reflector makes of a local claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Not a claim of this reflector: leave it (and any twin) alone.
    Ignore,
    /// Being deleted, or waiting for its node: keep what exists, create nothing.
    Wait,
    /// Reflect it.
    Reflect,
}

impl Namespaced {
    fn on_claim_event(&self, event: watcher::Event<PersistentVolumeClaim>) {
        match event {
            watcher::Event::Apply(obj)
            | watcher::Event::Delete(obj)
            | watcher::Event::InitApply(obj) => self.queue.add(obj.name_any()),
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init => {}
        }
    }

    fn on_volume_event(&self, event: watcher::Event<PersistentVolume>) {
        match event {
            watcher::Event::Apply(pv)
            | watcher::Event::Delete(pv)
            | watcher::Event::InitApply(pv) => {
                if let Some(name) = self.claim_of(&pv) {
                    self.queue.add(name.to_owned());
                }
            }
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init => {}
        }
    }

    /// A virtual node appeared, changed or went: the claims scheduled on it may change fate.
    fn on_node_event(&self, event: &watcher::Event<Node>) {
        match event {
            watcher::Event::Apply(node)
            | watcher::Event::Delete(node)
            | watcher::Event::InitApply(node) => {
                let node = node.name_any();
                for claim in self.local_store.state() {
                    if selected_node(&claim) == Some(node.as_str()) {
                        self.queue.add(claim.name_any());
                    }
                }
            }
            watcher::Event::InitDone => self.enqueue_all(),
            watcher::Event::Init => {}
        }
    }

    /// Queues every claim either side knows, and every claim a volume points to: after a
    /// (re)list, deleted objects only show up as missing.
    fn enqueue_all(&self) {
        for claim in self.local_store.state() {
            self.queue.add(claim.name_any());
        }
        for claim in self.remote_store.state() {
            self.queue.add(claim.name_any());
        }
        for pv in self.volume_store.state() {
            if let Some(name) = self.claim_of(&pv) {
                self.queue.add(name.to_owned());
            }
        }
    }

    /// The name of the local claim (of this namespace) a local volume is for.
    fn claim_of<'a>(&self, pv: &'a PersistentVolume) -> Option<&'a str> {
        let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
        (claim.namespace.as_deref() == Some(self.pair.local()))
            .then_some(claim.name.as_deref())
            .flatten()
    }

    /// The local volumes pointing to the local claim `name`, whatever its UID.
    fn volumes_of(&self, name: &str) -> Vec<Arc<PersistentVolume>> {
        self.volume_store
            .state()
            .into_iter()
            .filter(|pv| self.claim_of(pv) == Some(name))
            .collect()
    }

    fn is_owned(&self, remote: &PersistentVolumeClaim) -> bool {
        let labels = remote.labels();
        labels.get(ORIGIN).map(String::as_str) == Some(self.local_id.as_str())
            && labels.get(DESTINATION).map(String::as_str) == Some(self.remote_id.as_str())
    }

    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.node_store.get(&ObjectRef::new(name))
    }

    fn decide(&self, local: &PersistentVolumeClaim, has_volume: bool) -> Decision {
        if claim_class(local) != Some(self.virtual_class.as_str()) {
            return Decision::Ignore;
        }
        let bound_to = local
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .filter(|v| !v.is_empty());
        if bound_to.is_some_and(|v| v != volume_name(&local.uid().unwrap_or_default())) {
            // Bound to a volume someone else provided.
            return Decision::Ignore;
        }
        let on_our_node = selected_node(local).is_some_and(|n| self.node(n).is_some());
        if !has_volume && !on_our_node {
            return Decision::Ignore;
        }
        if local.meta().deletion_timestamp.is_some() {
            return Decision::Wait;
        }
        Decision::Reflect
    }

    /// Makes the twin and the local volume of the local claim `name` what they should be.
    async fn reconcile(&self, name: &str) -> Result<Outcome> {
        let local = self
            .local_store
            .get(&ObjectRef::new(name).within(self.pair.local()));
        let remote = self
            .remote_store
            .get(&ObjectRef::new(name).within(self.pair.remote()));
        let volumes = self.volumes_of(name);
        let mut outcome = Outcome::Unchanged;

        let Some(local) = local else {
            // The local claim is gone: so go its twin and its volume.
            if let Some(remote) = remote.filter(|r| self.is_owned(r)) {
                outcome = self.delete_remote(&remote).await?;
            }
            for pv in &volumes {
                if self.delete_volume(pv).await? == Outcome::Written {
                    outcome = Outcome::Written;
                }
            }
            return Ok(outcome);
        };
        let local_uid = local.uid().unwrap_or_default();
        // Volumes of an earlier claim with the same name.
        let (ours, stale): (Vec<_>, Vec<_>) = volumes
            .into_iter()
            .partition(|pv| claim_uid(pv) == Some(local_uid.as_str()));
        for pv in &stale {
            if self.delete_volume(pv).await? == Outcome::Written {
                outcome = Outcome::Written;
            }
        }
        if self.decide(&local, !ours.is_empty()) != Decision::Reflect {
            return Ok(outcome);
        }

        if let Some(remote) = &remote {
            if !self.is_owned(remote) {
                return Err(Error::NotManaged {
                    kind: KIND.to_owned(),
                    namespace: self.pair.remote().to_owned(),
                    name: name.to_owned(),
                });
            }
            if remote.meta().deletion_timestamp.is_some() {
                // Going away; its deletion queues the claim again.
                return Ok(outcome);
            }
            let reflects = remote.annotations().get(LOCAL_PVC_UID_ANNOTATION);
            if ours.is_empty() && reflects.is_some_and(|uid| *uid != local_uid) {
                // Left by an earlier local claim of the same name: its data is not this one's.
                return self.delete_remote(remote).await;
            }
        }

        let modes = match remote_access_modes(&local) {
            Ok(modes) => modes,
            Err(message) => {
                // Retrying cannot help: the claim's next change queues it again.
                self.publish(name, EventType::Warning, "FailedReflection", message)
                    .await;
                return Ok(outcome);
            }
        };
        let class = annotation(&local, REMOTE_STORAGE_CLASS)
            .map(str::to_owned)
            .or_else(|| {
                remote
                    .as_ref()
                    .and_then(|r| r.spec.as_ref()?.storage_class_name.clone())
            })
            .or_else(|| self.remote_class.clone());
        let twin = remote_claim(
            &local,
            self.pair.remote(),
            class,
            modes,
            &self.local_id,
            &self.remote_id,
        );
        let remote = match remote {
            Some(remote) if is_up_to_date(&twin, &remote)? => remote,
            _ => {
                let applied = self
                    .remote_claims
                    .patch(
                        name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&twin),
                    )
                    .await
                    .map_err(Error::kube(format!(
                        "applying {KIND} {}/{name} in the remote cluster",
                        self.pair.remote()
                    )))?;
                outcome = Outcome::Written;
                Arc::new(applied)
            }
        };

        if let Some(pv) = ours.first() {
            let remote_uid = remote.uid();
            if pv.labels().get(REMOTE_PVC_UID_LABEL) != remote_uid.as_ref() {
                warn!(
                    claim = %format!("{}/{name}", self.pair.local()),
                    volume = %pv.name_any(),
                    "the remote claim was replaced after its local volume was created; \
                     the data written before is not in the new remote claim"
                );
            }
            return Ok(outcome);
        }
        let Some(node) = selected_node(&local).and_then(|n| self.node(n)) else {
            return Ok(outcome);
        };
        let pv = local_volume(
            &local,
            &remote,
            &node,
            &self.virtual_class,
            &self.remote_id,
            self.pair.remote(),
        );
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match self.volumes.create(&params, &pv).await {
            Ok(_) => Ok(Outcome::Written),
            // Created by an earlier pass the store has not seen yet.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(outcome),
            Err(e) => Err(Error::kube(format!(
                "creating PersistentVolume {} for {KIND} {}/{name}",
                pv.name_any(),
                self.pair.local()
            ))(e)),
        }
    }

    /// Deletes an owned twin (only that very object: UID precondition).
    async fn delete_remote(&self, remote: &PersistentVolumeClaim) -> Result<Outcome> {
        if remote.meta().deletion_timestamp.is_some() {
            return Ok(Outcome::Unchanged);
        }
        let name = remote.name_any();
        delete_outcome(
            self.remote_claims
                .delete(&name, &uid_precondition(remote.uid()))
                .await,
        )
        .map_err(Error::kube(format!(
            "deleting {KIND} {}/{name} in the remote cluster",
            self.pair.remote()
        )))
    }

    /// Deletes a local volume of this reflector (only that very object: UID precondition).
    async fn delete_volume(&self, pv: &PersistentVolume) -> Result<Outcome> {
        if pv.meta().deletion_timestamp.is_some() {
            return Ok(Outcome::Unchanged);
        }
        let name = pv.name_any();
        delete_outcome(
            self.volumes
                .delete(&name, &uid_precondition(pv.uid()))
                .await,
        )
        .map_err(Error::kube(format!("deleting PersistentVolume {name}")))
    }

    /// Records an Event on the local claim `name`, if it still exists.
    async fn publish(&self, name: &str, type_: EventType, reason: &str, note: String) {
        let Some(local) = self
            .local_store
            .get(&ObjectRef::new(name).within(self.pair.local()))
        else {
            return;
        };
        let event = KubeEvent {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reflect".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &local.object_ref(&())).await {
            debug!(error = %e, "cannot record a reflection event");
        }
    }
}

fn uid_precondition(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// A deletion that finds the object gone, or replaced by another one with the same name
/// (precondition failed), did nothing and is fine.
fn delete_outcome<T>(result: kube::Result<T>) -> kube::Result<Outcome> {
    match result {
        Ok(_) => Ok(Outcome::Written),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Outcome::Unchanged),
        Err(e) => Err(e),
    }
}

fn annotation<'a>(claim: &'a PersistentVolumeClaim, key: &str) -> Option<&'a str> {
    claim
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The node the scheduler selected for a claim, if any.
fn selected_node(claim: &PersistentVolumeClaim) -> Option<&str> {
    annotation(claim, SELECTED_NODE_ANNOTATION)
        .or_else(|| annotation(claim, ALPHA_SELECTED_NODE_ANNOTATION))
}

/// A claim's storage class: the legacy annotation first, then the spec, as Kubernetes reads it.
fn claim_class(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
        .or_else(|| claim.spec.as_ref()?.storage_class_name.as_ref())
        .map(String::as_str)
}

fn claim_uid(pv: &PersistentVolume) -> Option<&str> {
    pv.spec.as_ref()?.claim_ref.as_ref()?.uid.as_deref()
}

/// The access modes of the twin: the [`REMOTE_ACCESS_MODES`] annotation (comma separated,
/// blanks ignored), else the local claim's. `Err` explains an invalid annotation.
fn remote_access_modes(local: &PersistentVolumeClaim) -> Result<Vec<String>, String> {
    let Some(value) = annotation(local, REMOTE_ACCESS_MODES) else {
        return Ok(local
            .spec
            .as_ref()
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default());
    };
    let modes: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = modes.iter().find(|m| !ACCESS_MODES.contains(&m.as_str())) {
        return Err(format!(
            "annotation {REMOTE_ACCESS_MODES}: unknown access mode {unknown:?} (known: {})",
            ACCESS_MODES.join(", ")
        ));
    }
    if modes.is_empty() {
        return Err(format!(
            "annotation {REMOTE_ACCESS_MODES}: no access mode in {value:?}"
        ));
    }
    Ok(modes)
}

/// The twin of `local` (server-side-apply intent): same name, in `namespace`, with the local
/// labels plus the ownership labels, the local annotations minus [`NOT_COPIED_ANNOTATIONS`]
/// plus [`LOCAL_PVC_UID_ANNOTATION`], and a spec with `class` (none: the provider's default),
/// `access_modes`, the local volume mode (default `Filesystem`) and the local resources. The
/// selector, data source and volume name are not copied: they name local objects.
fn remote_claim(
    local: &PersistentVolumeClaim,
    namespace: &str,
    class: Option<String>,
    access_modes: Vec<String>,
    origin: &ClusterId,
    destination: &ClusterId,
) -> PersistentVolumeClaim {
    let mut metadata = crate::forge::remote_metadata(&local.metadata);
    metadata.namespace = Some(namespace.to_owned());
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(ORIGIN.to_owned(), origin.to_string());
    labels.insert(DESTINATION.to_owned(), destination.to_string());
    let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.retain(|key, _| !NOT_COPIED_ANNOTATIONS.contains(&key.as_str()));
    if let Some(uid) = &local.metadata.uid {
        annotations.insert(LOCAL_PVC_UID_ANNOTATION.to_owned(), uid.clone());
    }
    if annotations.is_empty() {
        metadata.annotations = None;
    }
    let spec = local.spec.clone().unwrap_or_default();
    let resources = spec.resources.map(|r| VolumeResourceRequirements {
        limits: r.limits.filter(|l| !l.is_empty()),
        requests: r.requests.filter(|r| !r.is_empty()),
    });
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes),
            volume_mode: Some(spec.volume_mode.unwrap_or_else(|| "Filesystem".to_owned())),
            resources,
            storage_class_name: class.filter(|c| !c.is_empty()),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// The local volume standing for `remote`, the twin of `local`, pinned to the virtual `node`.
fn local_volume(
    local: &PersistentVolumeClaim,
    remote: &PersistentVolumeClaim,
    node: &Node,
    virtual_class: &str,
    remote_id: &ClusterId,
    remote_namespace: &str,
) -> PersistentVolume {
    let name = local.name_any();
    let local_spec = local.spec.clone().unwrap_or_default();
    let bound = remote
        .status
        .as_ref()
        .is_some_and(|s| s.phase.as_deref() == Some("Bound"));
    let storage: Option<Quantity> = bound
        .then(|| {
            remote
                .status
                .as_ref()?
                .capacity
                .as_ref()?
                .get("storage")
                .cloned()
        })
        .flatten()
        .or_else(|| {
            local_spec
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")
                .cloned()
        });

    let mut labels = BTreeMap::from([
        (REMOTE_CLUSTER_ID.to_owned(), remote_id.to_string()),
        (
            REMOTE_PVC_NAMESPACE_LABEL.to_owned(),
            remote_namespace.to_owned(),
        ),
    ]);
    if let Some(uid) = remote.uid() {
        labels.insert(REMOTE_PVC_UID_LABEL.to_owned(), uid);
    }
    let annotations = BTreeMap::from([
        (PROVISIONED_BY_ANNOTATION.to_owned(), PROVISIONER.to_owned()),
        (REMOTE_PVC_NAME_ANNOTATION.to_owned(), name.clone()),
    ]);

    let requirement = |key: &str, value: &str| NodeSelectorRequirement {
        key: key.to_owned(),
        operator: "In".to_owned(),
        values: Some(vec![value.to_owned()]),
    };
    let mut expressions = vec![
        requirement(TYPE, TYPE_VIRTUAL_NODE),
        requirement(REMOTE_CLUSTER_ID, remote_id.as_str()),
    ];
    if let Some(hostname) = node.labels().get(HOSTNAME_LABEL) {
        expressions.push(requirement(HOSTNAME_LABEL, hostname));
    }

    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(&local.uid().unwrap_or_default())),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: local_spec.access_modes.clone(),
            capacity: storage.map(|q| BTreeMap::from([("storage".to_owned(), q)])),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some(KIND.to_owned()),
                namespace: local.namespace(),
                name: Some(name.clone()),
                uid: local.uid(),
                ..ObjectReference::default()
            }),
            local: Some(LocalVolumeSource {
                path: format!("{VOLUME_PATH_PREFIX}/{remote_id}/{remote_namespace}/{name}"),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(expressions),
                        match_fields: None,
                    }],
                }),
            }),
            persistent_volume_reclaim_policy: Some("Delete".to_owned()),
            storage_class_name: Some(virtual_class.to_owned()),
            volume_mode: local_spec.volume_mode.clone(),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

/// Whether the remote claim already has every label, annotation and spec field of the twin.
fn is_up_to_date(twin: &PersistentVolumeClaim, remote: &PersistentVolumeClaim) -> Result<bool> {
    let to_json = |obj: &PersistentVolumeClaim| {
        serde_json::to_value(obj).map_err(|source| Error::Serialization {
            what: "a PersistentVolumeClaim twin".to_owned(),
            source,
        })
    };
    let (mut want, got) = (to_json(twin)?, to_json(remote)?);
    if let Some(meta) = want.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.retain(|k, _| k == "labels" || k == "annotations");
    }
    Ok(covers(&got, &want))
}

/// Whether `got` has everything `want` has (objects may have more keys; arrays must match).
fn covers(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| covers(gv, v))),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| covers(a, b))
        }
        _ => got == want,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;
    use serde_json::json;

    fn id(s: &str) -> ClusterId {
        s.parse().unwrap()
    }

    fn claim(annotations: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {
                "name": "data",
                "namespace": "demo",
                "uid": "local-uid",
                "resourceVersion": "12",
                "labels": {"app": "db"},
                "annotations": annotations,
                "finalizers": ["kubernetes.io/pvc-protection"],
            },
            "spec": {
                "storageClassName": "liqo",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}},
                "selector": {"matchLabels": {"tier": "fast"}},
                "volumeName": "",
            },
        }))
        .unwrap()
    }

    #[test]
    fn remote_claim_keeps_what_the_provider_needs() {
        let local = claim(json!({
            "volume.kubernetes.io/selected-node": "liqo-milan",
            "volume.kubernetes.io/storage-provisioner": "liqo.io/storage",
            "liqo.io/remote-storage-class": "standard",
            "liqo.io/skip-reflection": "false",
            "team": "storage",
        }));
        let modes = remote_access_modes(&local).unwrap();
        let twin = remote_claim(
            &local,
            "demo-rome",
            Some("standard".into()),
            modes,
            &id("rome"),
            &id("milan"),
        );
        let meta = &twin.metadata;
        assert_eq!(meta.name.as_deref(), Some("data"));
        assert_eq!(meta.namespace.as_deref(), Some("demo-rome"));
        assert_eq!(
            (meta.uid.as_ref(), meta.resource_version.as_ref()),
            (None, None)
        );
        assert_eq!(meta.finalizers, None);
        let labels = meta.labels.clone().unwrap();
        assert_eq!(labels["app"], "db");
        assert_eq!(labels[ORIGIN], "rome");
        assert_eq!(labels[DESTINATION], "milan");
        let annotations = meta.annotations.clone().unwrap();
        assert_eq!(
            annotations,
            BTreeMap::from([
                ("team".to_owned(), "storage".to_owned()),
                (LOCAL_PVC_UID_ANNOTATION.to_owned(), "local-uid".to_owned()),
            ])
        );
        let spec = twin.spec.unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_owned()]));
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        let resources = spec.resources.unwrap();
        assert_eq!(resources.requests.unwrap()["storage"].0, "1Gi");
        assert_eq!(resources.limits.unwrap()["storage"].0, "2Gi");
        assert_eq!(spec.selector, None);
        assert_eq!(spec.volume_name, None);
    }

    #[test]
    fn no_class_means_the_provider_default() {
        let local = claim(json!({}));
        let twin = remote_claim(&local, "r", None, vec![], &id("a"), &id("b"));
        assert_eq!(twin.spec.unwrap().storage_class_name, None);
    }

    #[test]
    fn access_modes_from_the_annotation() {
        let local = claim(json!({REMOTE_ACCESS_MODES: " ReadWriteMany, ReadOnlyMany ,"}));
        assert_eq!(
            remote_access_modes(&local).unwrap(),
            vec!["ReadWriteMany".to_owned(), "ReadOnlyMany".to_owned()]
        );
        let local = claim(json!({REMOTE_ACCESS_MODES: "ReadWriteOnce,Sometimes"}));
        assert!(
            remote_access_modes(&local)
                .unwrap_err()
                .contains("Sometimes")
        );
        let local = claim(json!({REMOTE_ACCESS_MODES: " , "}));
        assert!(remote_access_modes(&local).is_err());
        // An empty annotation is no annotation.
        let local = claim(json!({REMOTE_ACCESS_MODES: ""}));
        assert_eq!(
            remote_access_modes(&local).unwrap(),
            vec!["ReadWriteOnce".to_owned()]
        );
    }

    #[test]
    fn class_and_selected_node() {
        let local = claim(json!({ALPHA_SELECTED_NODE_ANNOTATION: "n1"}));
        assert_eq!(selected_node(&local), Some("n1"));
        assert_eq!(claim_class(&local), Some("liqo"));
        let local = claim(json!({
            SELECTED_NODE_ANNOTATION: "n2",
            ALPHA_SELECTED_NODE_ANNOTATION: "n1",
            BETA_STORAGE_CLASS_ANNOTATION: "old",
        }));
        assert_eq!(selected_node(&local), Some("n2"));
        assert_eq!(claim_class(&local), Some("old"));
    }

    fn node(labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "liqo-milan", "labels": labels}}))
            .unwrap()
    }

    #[test]
    fn local_volume_pins_the_claim_to_the_virtual_node() {
        let local = claim(json!({}));
        let mut remote = remote_claim(&local, "demo-rome", None, vec![], &id("rome"), &id("milan"));
        remote.metadata.uid = Some("remote-uid".into());
        let vn = node(json!({
            TYPE: TYPE_VIRTUAL_NODE,
            REMOTE_CLUSTER_ID: "milan",
            HOSTNAME_LABEL: "liqo-milan",
        }));
        let pv = local_volume(&local, &remote, &vn, "liqo", &id("milan"), "demo-rome");
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-local-uid"));
        let labels = pv.metadata.labels.clone().unwrap();
        assert_eq!(labels[REMOTE_CLUSTER_ID], "milan");
        assert_eq!(labels[REMOTE_PVC_NAMESPACE_LABEL], "demo-rome");
        assert_eq!(labels[REMOTE_PVC_UID_LABEL], "remote-uid");
        let annotations = pv.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[PROVISIONED_BY_ANNOTATION], "liqo.io/storage");
        assert_eq!(annotations[REMOTE_PVC_NAME_ANNOTATION], "data");
        let spec = pv.spec.unwrap();
        // Not bound remotely yet: the local request.
        assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_owned()]));
        assert_eq!(spec.storage_class_name.as_deref(), Some("liqo"));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let claim_ref = spec.claim_ref.unwrap();
        assert_eq!(claim_ref.kind.as_deref(), Some("PersistentVolumeClaim"));
        assert_eq!(claim_ref.namespace.as_deref(), Some("demo"));
        assert_eq!(claim_ref.name.as_deref(), Some("data"));
        assert_eq!(claim_ref.uid.as_deref(), Some("local-uid"));
        assert_eq!(
            spec.local.unwrap().path,
            "/var/lib/liqo/remote-volumes/milan/demo-rome/data"
        );
        let terms = spec
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        let expressions: Vec<_> = terms[0]
            .match_expressions
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.operator, e.values.unwrap()))
            .collect();
        assert_eq!(
            expressions,
            vec![
                (TYPE.into(), "In".into(), vec![TYPE_VIRTUAL_NODE.to_owned()]),
                (
                    REMOTE_CLUSTER_ID.into(),
                    "In".into(),
                    vec!["milan".to_owned()]
                ),
                (
                    HOSTNAME_LABEL.into(),
                    "In".into(),
                    vec!["liqo-milan".to_owned()]
                ),
            ]
        );

        // Bound remotely: the remote capacity. A node without host name: no such term.
        remote.status =
            serde_json::from_value(json!({"phase": "Bound", "capacity": {"storage": "5Gi"}}))
                .unwrap();
        let vn = node(json!({TYPE: TYPE_VIRTUAL_NODE, REMOTE_CLUSTER_ID: "milan"}));
        let pv = local_volume(&local, &remote, &vn, "liqo", &id("milan"), "demo-rome");
        let spec = pv.spec.unwrap();
        assert_eq!(spec.capacity.unwrap()["storage"].0, "5Gi");
        let terms = spec
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms[0].match_expressions.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn up_to_date_ignores_what_the_server_adds() {
        let local = claim(json!({"team": "storage"}));
        let twin = remote_claim(
            &local,
            "r",
            Some("standard".into()),
            vec!["ReadWriteOnce".into()],
            &id("a"),
            &id("b"),
        );
        let mut remote = twin.clone();
        remote.metadata.uid = Some("u".into());
        remote
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("pv.kubernetes.io/bind-completed".into(), "yes".into());
        if let Some(spec) = remote.spec.as_mut() {
            spec.volume_name = Some("standard-1".into());
        }
        assert!(is_up_to_date(&twin, &remote).unwrap());
        if let Some(spec) = remote.spec.as_mut() {
            spec.access_modes = Some(vec!["ReadWriteMany".into()]);
        }
        assert!(!is_up_to_date(&twin, &remote).unwrap());
    }
}
