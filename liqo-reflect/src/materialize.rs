//! The machinery of the provider-side controllers that make one object from each shadow of the
//! same namespace and name (ShadowPod -> Pod, ShadowEndpointSlice -> EndpointSlice): watch
//! caches of the shadows and of the objects made from them (`namespace/name` keys shared by
//! both), the reflectors' worker queue, and the deletion of an object whose shadow is gone
//! ([`delete_orphan`]). A [`Materializer`] only says what to do for a shadow that exists.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Preconditions},
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use liqo_core::runtime::KeyedBackoff;
use tokio::task::JoinSet;
use tracing::{debug, info};

use crate::{
    Error, Result,
    metrics::ReflectorMetrics,
    queue::Queue,
    worker::{Handler, Outcome, Watched, watch_slim, work},
};

/// The owner reference of `object` to its controller of kind `O`, if it has one and is not
/// being deleted (pure): the object a materializing controller made from an `O`.
pub(crate) fn controller_of<O: Resource<DynamicType = ()>>(
    object: &impl Resource,
) -> Option<&OwnerReference> {
    if object.meta().deletion_timestamp.is_some() {
        return None;
    }
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == O::kind(&()))
}

/// Deletes `object`, made by a controller from an `O` (see [`controller_of`]), when that `O`
/// is gone. The owner is read from the API server first: caches of different kinds may lag
/// behind each other. The garbage collector would delete such objects too, but only once its
/// discovery knows `O`'s kind (up to half a minute after a CRD is installed) and it is often
/// busy: the objects a shadow stands for should go with it.
pub(crate) async fn delete_orphan<O: Cached, K: Cached>(
    client: &Client,
    object: &K,
) -> Result<Outcome> {
    let Some(owner) = controller_of::<O>(object) else {
        return Ok(Outcome::Unchanged);
    };
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let live = Api::<O>::namespaced(client.clone(), &namespace)
        .get_opt(&owner.name)
        .await
        .map_err(Error::kube(format!(
            "reading {} {namespace}/{}",
            O::kind(&()),
            owner.name
        )))?;
    if live.is_some_and(|o| o.meta().uid.as_deref() == Some(owner.uid.as_str())) {
        // Still there: the cache has not seen it yet.
        return Ok(Outcome::Unchanged);
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match Api::<K>::namespaced(client.clone(), &namespace)
        .delete(&name, &params)
        .await
    {
        Ok(_) => {
            debug!(kind = %K::kind(&()), %namespace, %name, owner = %O::kind(&()), "deleted: its owner is gone");
            Ok(Outcome::Written)
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Outcome::Unchanged),
        Err(e) => Err(Error::kube(format!(
            "deleting {} {namespace}/{name}",
            K::kind(&())
        ))(e)),
    }
}

/// An object kind the materializing controllers cache: namespaced.
pub(crate) trait Cached: Watched + Resource<Scope = NamespaceResourceScope> {}

impl<T: Watched + Resource<Scope = NamespaceResourceScope>> Cached for T {}

/// What one materializing controller does for a shadow that exists.
#[async_trait]
pub(crate) trait Materializer: Send + Sync + 'static {
    /// The shadow kind.
    type Shadow: Cached;
    /// The kind made from it.
    type Made: Cached;
    /// The shadow kind's name, for logs.
    const KIND: &'static str;

    /// Brings the object made from `shadow` (`made`, as cached) in line with it.
    async fn reconcile(
        &self,
        client: &Client,
        key: &str,
        shadow: Arc<Self::Shadow>,
        made: Option<Arc<Self::Made>>,
    ) -> Result<Outcome>;

    /// The shadow of `key` left the cache (its object, if any, is deleted next).
    fn forget(&self, _key: &str) {}
}

/// A [`Materializer`] with its caches and queue.
struct Materializing<M: Materializer> {
    materializer: M,
    client: Client,
    shadows: Store<M::Shadow>,
    made: Store<M::Made>,
    queue: Queue,
    backoff: KeyedBackoff<String>,
    metrics: Arc<ReflectorMetrics>,
}

fn key_of(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

impl<M: Materializer> Materializing<M> {
    fn on_event<O: Resource>(&self, event: watcher::Event<O>) {
        match event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                self.queue.add(key_of(o.meta()));
            }
            // After a relist, what changed while the watch was down produced no event.
            watcher::Event::InitDone => {
                for shadow in self.shadows.state() {
                    self.queue.add(key_of(shadow.meta()));
                }
                for made in self.made.state() {
                    self.queue.add(key_of(made.meta()));
                }
            }
            watcher::Event::Init => {}
        }
    }
}

#[async_trait]
impl<M: Materializer> Handler for Materializing<M> {
    fn describe(&self) -> String {
        M::KIND.to_owned()
    }

    async fn ready(&self) {
        let _ = self.shadows.wait_until_ready().await;
        let _ = self.made.wait_until_ready().await;
    }

    async fn handle(&self, key: &str) -> Result<Outcome> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let made = self.made.get(&ObjectRef::new(name).within(namespace));
        match self.shadows.get(&ObjectRef::new(name).within(namespace)) {
            Some(shadow) => {
                self.materializer
                    .reconcile(&self.client, key, shadow, made)
                    .await
            }
            None => {
                self.materializer.forget(key);
                match made {
                    Some(made) => delete_orphan::<M::Shadow, _>(&self.client, made.as_ref()).await,
                    None => Ok(Outcome::Unchanged),
                }
            }
        }
    }

    async fn report(&self, _key: &str, _error: &Error) {}

    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics) {
        (&self.queue, &self.backoff, &self.metrics)
    }
}

/// Where a materializing controller looks.
pub(crate) struct Watches<S, K> {
    /// The shadows.
    pub(crate) shadows: Api<S>,
    /// The objects made from them.
    pub(crate) made: Api<K>,
    /// Selects the objects this controller made.
    pub(crate) made_config: watcher::Config,
    /// Drops from the cached objects what the materializer never reads.
    pub(crate) slim: fn(&mut K),
}

/// Runs `materializer` with `workers` concurrent reconciles until `shutdown` resolves.
pub(crate) async fn run<M: Materializer>(
    materializer: M,
    client: Client,
    watches: Watches<M::Shadow, M::Made>,
    workers: u16,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (shadow_store, shadow_writer) = reflector::store();
    let (made_store, made_writer) = reflector::store();
    let state = Arc::new(Materializing {
        materializer,
        client,
        shadows: shadow_store,
        made: made_store,
        queue: Queue::new(Arc::new(ReflectorMetrics::default())),
        backoff: KeyedBackoff::default(),
        metrics: Arc::new(ReflectorMetrics::default()),
    });
    let mut tasks = JoinSet::new();
    let (s1, s2) = (state.clone(), state.clone());
    tasks.spawn(watch_slim(
        watches.shadows,
        watcher::Config::default(),
        shadow_writer,
        |_| {},
        move |event: watcher::Event<M::Shadow>| s1.on_event(event),
    ));
    tasks.spawn(watch_slim(
        watches.made,
        watches.made_config,
        made_writer,
        watches.slim,
        move |event: watcher::Event<M::Made>| s2.on_event(event),
    ));
    for _ in 0..workers.max(1) {
        tasks.spawn(work(state.clone()));
    }
    info!("{} controller running", M::KIND);
    shutdown.await;
    tasks.shutdown().await;
    info!("{} controller stopped", M::KIND);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use liqo_core::api::offloading::v1beta1::{ShadowEndpointSlice, ShadowPod};

    #[test]
    fn only_live_objects_controlled_by_the_kind_have_a_controller() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs"},
                {"apiVersion": "offloading.liqo.io/v1beta1", "kind": "ShadowPod", "name": "web",
                 "uid": "shadow", "controller": true},
            ]},
        }))
        .unwrap();
        assert_eq!(controller_of::<ShadowPod>(&pod).unwrap().uid, "shadow");
        assert!(controller_of::<ShadowEndpointSlice>(&pod).is_none());
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(controller_of::<ShadowPod>(&pod).is_none(), "already going");
    }
}
