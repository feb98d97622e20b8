//! The machinery every reflector shares: watches feeding stores, and workers draining a
//! [`Queue`] through a [`Handler`] with per-key exponential backoff and metrics.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use futures::TryStreamExt;
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Preconditions},
    runtime::{WatchStreamExt, reflector, watcher},
};
use liqo_core::{
    ids::NamespacePair,
    runtime::{KeyedBackoff, retrying},
};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::{Error, Result, metrics::ReflectorMetrics, queue::Queue};

/// What handling a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Something was written (counted as reflected, with its latency).
    Written,
    /// Nothing needed doing.
    Unchanged,
}

/// One reflector's work in one namespace pair.
#[async_trait]
pub(crate) trait Handler: Send + Sync + 'static {
    /// For logs, e.g. `ConfigMap in demo`.
    fn describe(&self) -> String;
    /// Resolves once the handler's caches are filled.
    async fn ready(&self);
    /// Makes the reflection of `key` what it should be.
    async fn handle(&self, key: &str) -> Result<Outcome>;
    /// Reports a failure (for example as an Event on the source object).
    async fn report(&self, key: &str, error: &Error);
    /// The queue, backoff and metrics the workers use.
    fn parts(&self) -> (&Queue, &KeyedBackoff<String>, &ReflectorMetrics);
}

/// A worker: takes keys from the queue and handles them, retrying failures after a per-key
/// exponential backoff.
pub(crate) async fn work<H: Handler>(handler: Arc<H>) {
    handler.ready().await;
    loop {
        let next = handler.parts().0.next().await;
        let Some((key, since)) = next else { return };
        let (queue, backoff, metrics) = handler.parts();
        match handler.handle(&key).await {
            Ok(outcome) => {
                backoff.reset(&key);
                if outcome == Outcome::Written {
                    metrics.observe_reflected(since.elapsed());
                }
            }
            Err(error) => {
                metrics.observe_error();
                let delay = backoff.next(&key);
                warn!(what = %handler.describe(), name = %key, %error, retry_in = ?delay, "reflection failed");
                handler.report(&key, &error).await;
                let retry = handler.clone();
                let retry_key = key.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    retry.parts().0.add(retry_key);
                });
            }
        }
        queue.done(&key);
    }
}

/// Feeds a store from a watch (re-listing after reconnections, with
/// [`liqo_core::runtime::retrying`]'s backoff: none after a 410 Gone)
/// and hands every event to `on_event`. The objects are stored without their `managedFields`
/// (no reflector reads them, and they are often the largest part of an object).
pub(crate) async fn watch<O>(
    api: Api<O>,
    config: watcher::Config,
    writer: reflector::store::Writer<O>,
    on_event: impl Fn(watcher::Event<O>) + Send + 'static,
) where
    O: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    watch_slim(api, config, writer, |_| {}, on_event).await;
}

/// [`watch`], storing the objects as `slim` leaves them: a cache that keeps only the fields
/// its reader uses saves memory with thousands of objects (a pod spec is several KiB).
pub(crate) async fn watch_slim<O>(
    api: Api<O>,
    config: watcher::Config,
    writer: reflector::store::Writer<O>,
    slim: impl Fn(&mut O) + Send + 'static,
    on_event: impl Fn(watcher::Event<O>) + Send + 'static,
) where
    O: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = retrying(watcher(api, config)).modify(move |o| {
        o.meta_mut().managed_fields = None;
        slim(o);
    });
    let stream = reflector::reflector(writer, stream);
    let mut stream = std::pin::pin!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => on_event(event),
            Ok(None) => return,
            Err(e) => debug!(error = %e, "watch error"),
        }
    }
}

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
pub(crate) async fn delete_orphan<O, K>(client: &Client, object: &K) -> Result<Outcome>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
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

/// The tasks a reflector runs for each namespace pair it serves.
#[derive(Debug, Default)]
pub(crate) struct NamespaceTasks(Mutex<HashMap<NamespacePair, JoinSet<()>>>);

impl NamespaceTasks {
    fn lock(&self) -> MutexGuard<'_, HashMap<NamespacePair, JoinSet<()>>> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether the pair is being served.
    pub(crate) fn is_running(&self, pair: &NamespacePair) -> bool {
        self.lock().contains_key(pair)
    }

    /// Records the tasks serving `pair`.
    pub(crate) fn insert(&self, pair: &NamespacePair, tasks: JoinSet<()>) {
        self.lock().insert(pair.clone(), tasks);
    }

    /// Aborts the tasks serving `pair`. Returns whether there were any.
    pub(crate) fn stop(&self, pair: &NamespacePair) -> bool {
        match self.lock().remove(pair) {
            Some(mut tasks) => {
                tasks.abort_all();
                true
            }
            None => false,
        }
    }
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
