//! The machinery every reflector shares: watches feeding stores, and workers draining a
//! [`Queue`] through a [`Handler`] with per-key exponential backoff and metrics.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use futures::TryStreamExt;
use kube::{
    Api,
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

/// A kind the reflectors watch into a cache.
pub(crate) trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Watched for T where
    T: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Feeds a store from a watch (re-listing after reconnections, with
/// [`liqo_core::runtime::retrying`]'s backoff: none after a 410 Gone)
/// and hands every event to `on_event`. The objects are stored without their `managedFields`
/// (no reflector reads them, and they are often the largest part of an object).
pub(crate) async fn watch<O: Watched>(
    api: Api<O>,
    config: watcher::Config,
    writer: reflector::store::Writer<O>,
    on_event: impl Fn(watcher::Event<O>) + Send + 'static,
) {
    watch_slim(api, config, writer, |_| {}, on_event).await;
}

/// [`watch`], storing the objects as `slim` leaves them: a cache that keeps only the fields
/// its reader uses saves memory with thousands of objects (a pod spec is several KiB).
pub(crate) async fn watch_slim<O: Watched>(
    api: Api<O>,
    config: watcher::Config,
    writer: reflector::store::Writer<O>,
    slim: impl Fn(&mut O) + Send + 'static,
    on_event: impl Fn(watcher::Event<O>) + Send + 'static,
) {
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
