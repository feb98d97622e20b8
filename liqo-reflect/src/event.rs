//! Events, reflected from the remote cluster back to the local one (upstream's `event`
//! reflector, the only one that works remote to local).
//!
//! An Event in the remote twin namespace about a Pod (or its ShadowPod), Service,
//! EndpointSlice, Ingress, ConfigMap, Secret or PersistentVolumeClaim that exists locally
//! becomes an Event in the local namespace about the local object, with its UID, so that
//! `kubectl describe` and `kubectl events --for` show what happens remotely. Events about
//! objects that do not exist locally are ignored. Local twins carry the ownership labels with
//! the remote cluster as origin, and go when their remote Event goes.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::{
    ids::NamespacePair,
    labels::reflection::{DESTINATION, FIELD_MANAGER, ORIGIN, SKIP_REFLECTION},
    runtime::KeyedBackoff,
};
use tokio::task::JoinSet;

use crate::{
    Error, Reflector, Result,
    engine::{Clusters, ReflectorConfig},
    forge::{ConfigMapForge, Forge, ForgeContext},
    metrics::{ReflectorMetrics, Registry},
    queue::Queue,
    worker::{Handler, NamespaceTasks, Outcome, watch, work},
};

/// The kinds whose Events are reflected, with the local kind each stands for.
fn local_kind(remote_kind: &str) -> Option<ApiResource> {
    use k8s_openapi::api::{
        core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service},
        discovery::v1::EndpointSlice,
        networking::v1::Ingress,
    };
    Some(match remote_kind {
        // The provider runs the offloaded pod (and its ShadowPod) under the local pod's name.
        "Pod" | "ShadowPod" => ApiResource::erase::<Pod>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "EndpointSlice" => ApiResource::erase::<EndpointSlice>(&()),
        "Ingress" => ApiResource::erase::<Ingress>(&()),
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        "PersistentVolumeClaim" => ApiResource::erase::<PersistentVolumeClaim>(&()),
        _ => return None,
    })
}

/// Reflects Events from the remote namespace of each pair into the local one.
pub struct EventReflector {
    clusters: Clusters,
    config: ReflectorConfig,
    metrics: Arc<ReflectorMetrics>,
    namespaces: NamespaceTasks,
}

impl std::fmt::Debug for EventReflector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReflector")
            .field("clusters", &self.clusters)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EventReflector {
    /// A reflector named `events`.
    pub fn new(clusters: Clusters, config: ReflectorConfig, registry: &Registry) -> Self {
        Self {
            metrics: registry.reflector("events"),
            clusters,
            config,
            namespaces: NamespaceTasks::default(),
        }
    }
}

#[async_trait]
impl Reflector for EventReflector {
    fn name(&self) -> &str {
        "events"
    }

    async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
        if self.config.workers == 0 || self.namespaces.is_running(pair) {
            return Ok(());
        }
        let remote_api: Api<Event> = Api::namespaced(self.clusters.remote.clone(), pair.remote());
        let local_api: Api<Event> = Api::namespaced(self.clusters.local.clone(), pair.local());
        let (remote_store, remote_writer) = reflector::store();
        let (local_store, local_writer) = reflector::store();
        let handler = Arc::new(Namespaced {
            ctx: ForgeContext {
                local_cluster: self.clusters.local_id.clone(),
                remote_cluster: self.clusters.remote_id.clone(),
                local_namespace: pair.local().to_owned(),
                remote_namespace: pair.remote().to_owned(),
            },
            local: self.clusters.local.clone(),
            local_api: local_api.clone(),
            remote_store,
            local_store,
            queue: Queue::new(self.metrics.clone()),
            backoff: KeyedBackoff::default(),
            metrics: self.metrics.clone(),
        });
        let mut tasks = JoinSet::new();
        let (on_remote, on_local) = (handler.clone(), handler.clone());
        tasks.spawn(watch(
            remote_api,
            watcher::Config::default(),
            remote_writer,
            move |event| {
                on_remote.on_event(event);
            },
        ));
        // Only the twins this reflection wrote.
        let owned = format!("{ORIGIN}={}", self.clusters.remote_id);
        tasks.spawn(watch(
            local_api,
            watcher::Config::default().labels(&owned),
            local_writer,
            move |event| {
                on_local.on_event(event);
            },
        ));
        for _ in 0..self.config.workers {
            tasks.spawn(work(handler.clone()));
        }
        self.namespaces.insert(pair, tasks);
        Ok(())
    }

    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
        self.namespaces.stop(pair);
        Ok(())
    }
}

struct Namespaced {
    ctx: ForgeContext,
    local: Client,
    local_api: Api<Event>,
    remote_store: Store<Event>,
    local_store: Store<Event>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
}

impl Namespaced {
    fn on_event(&self, event: watcher::Event<Event>) {
        match event {
            watcher::Event::Apply(e) | watcher::Event::Delete(e) | watcher::Event::InitApply(e) => {
                self.queue.add(e.name_any());
            }
            watcher::Event::InitDone => {
                for e in self
                    .remote_store
                    .state()
                    .iter()
                    .chain(self.local_store.state().iter())
                {
                    self.queue.add(e.name_any());
                }
            }
            watcher::Event::Init => {}
        }
    }

    /// The local object a remote Event is about, if it exists.
    async fn local_object(
        &self,
        involved: &ObjectReference,
    ) -> Result<Option<(ApiResource, DynamicObject)>> {
        if involved.namespace.as_deref() != Some(self.ctx.remote_namespace.as_str()) {
            return Ok(None);
        }
        let (Some(kind), Some(remote_name)) = (involved.kind.as_deref(), involved.name.as_deref())
        else {
            return Ok(None);
        };
        let Some(resource) = local_kind(kind) else {
            return Ok(None);
        };
        let name = if kind == "ConfigMap" {
            ConfigMapForge.local_name(remote_name, &self.ctx)
        } else {
            remote_name.to_owned()
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.local.clone(), &self.ctx.local_namespace, &resource);
        let object = api.get_opt(&name).await.map_err(Error::kube(format!(
            "reading {kind} {}/{name}",
            self.ctx.local_namespace
        )))?;
        Ok(object.map(|o| (resource, o)))
    }

    /// The local twin of `remote`, about `object`.
    fn twin(&self, remote: &Event, resource: &ApiResource, object: &DynamicObject) -> Event {
        let mut labels = BTreeMap::new();
        labels.insert(ORIGIN.to_owned(), self.ctx.remote_cluster.to_string());
        labels.insert(DESTINATION.to_owned(), self.ctx.local_cluster.to_string());
        let mut twin = Event {
            involved_object: ObjectReference {
                api_version: Some(resource.api_version.clone()),
                kind: Some(resource.kind.clone()),
                name: object.metadata.name.clone(),
                namespace: Some(self.ctx.local_namespace.clone()),
                uid: object.metadata.uid.clone(),
                field_path: remote.involved_object.field_path.clone(),
                resource_version: None,
            },
            reason: remote.reason.clone(),
            message: self.message(remote),
            type_: remote.type_.clone(),
            count: remote.count,
            first_timestamp: remote.first_timestamp.clone(),
            last_timestamp: remote.last_timestamp.clone(),
            source: remote.source.clone(),
            action: remote.action.clone(),
            ..Event::default()
        };
        // An eventTime requires a reporting controller and instance.
        if remote
            .reporting_component
            .as_deref()
            .is_some_and(|c| !c.is_empty())
            && remote
                .reporting_instance
                .as_deref()
                .is_some_and(|i| !i.is_empty())
        {
            twin.event_time = remote.event_time.clone();
            twin.reporting_component = remote.reporting_component.clone();
            twin.reporting_instance = remote.reporting_instance.clone();
        }
        twin.metadata.name = remote.metadata.name.clone();
        twin.metadata.namespace = Some(self.ctx.local_namespace.clone());
        twin.metadata.labels = Some(labels);
        twin
    }

    /// The message of the twin of `remote`: the remote one, saying which cluster it is from.
    fn message(&self, remote: &Event) -> Option<String> {
        remote
            .message
            .as_ref()
            .map(|m| format!("{m} (in cluster {})", self.ctx.remote_cluster))
    }

    /// Whether `local` is already the twin of `remote` (what [`Self::twin`] would change).
    fn is_current(&self, local: Option<&Event>, remote: &Event) -> bool {
        local.is_some_and(|l| {
            self.is_owned(l)
                && l.count == remote.count
                && l.last_timestamp == remote.last_timestamp
                && l.message == self.message(remote)
        })
    }

    fn is_owned(&self, local: &Event) -> bool {
        local.labels().get(ORIGIN).map(String::as_str) == Some(self.ctx.remote_cluster.as_str())
    }
}

#[async_trait]
impl Handler for Namespaced {
    fn describe(&self) -> String {
        format!("Events from {}", self.ctx.remote_namespace)
    }

    async fn ready(&self) {
        let _ = self.remote_store.wait_until_ready().await;
        let _ = self.local_store.wait_until_ready().await;
    }

    async fn handle(&self, name: &str) -> Result<Outcome> {
        let remote = self
            .remote_store
            .get(&ObjectRef::new(name).within(&self.ctx.remote_namespace));
        let local = self
            .local_store
            .get(&ObjectRef::new(name).within(&self.ctx.local_namespace));
        let skipped = |e: &Event| {
            e.annotations()
                .get(SKIP_REFLECTION)
                .is_some_and(|v| v == "true")
        };
        // Our own write of the twin comes back through the local watch: recognise it without
        // reading the object the Event is about again.
        if let Some(remote) = &remote
            && !skipped(remote)
            && self.is_current(local.as_deref(), remote)
        {
            return Ok(Outcome::Unchanged);
        }
        let target = match &remote {
            Some(remote) if !skipped(remote) => self.local_object(&remote.involved_object).await?,
            _ => None,
        };
        match (remote, target) {
            (Some(remote), Some((resource, object))) => {
                let twin = self.twin(&remote, &resource, &object);
                self.local_api
                    .patch(
                        name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&twin),
                    )
                    .await
                    .map_err(Error::kube(format!(
                        "writing Event {}/{name}",
                        self.ctx.local_namespace
                    )))?;
                Ok(Outcome::Written)
            }
            (_, _) => match local {
                Some(local) if self.is_owned(&local) => {
                    match self.local_api.delete(name, &DeleteParams::default()).await {
                        Ok(_) => Ok(Outcome::Written),
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Outcome::Unchanged),
                        Err(e) => Err(Error::kube(format!(
                            "deleting Event {}/{name}",
                            self.ctx.local_namespace
                        ))(e)),
                    }
                }
                _ => Ok(Outcome::Unchanged),
            },
        }
    }

    async fn report(&self, _key: &str, _error: &Error) {
        // Failures are logged by the worker; recording Events about Event reflection would
        // feed the reflection itself.
    }

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}

/// Compile-time guard: the reflector is usable as `Arc<dyn Reflector>`.
#[allow(dead_code)]
fn _assert_reflector(r: EventReflector) -> Arc<dyn Reflector> {
    Arc::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kinds_offloading_cares_about() {
        assert_eq!(local_kind("ShadowPod").unwrap().kind, "Pod");
        assert_eq!(
            local_kind("EndpointSlice").unwrap().group,
            "discovery.k8s.io"
        );
        assert!(local_kind("Node").is_none());
        assert!(local_kind("Lease").is_none());
    }

    #[test]
    fn resources_are_erased_with_their_plural() {
        assert_eq!(local_kind("Ingress").unwrap().plural, "ingresses");
    }
}
