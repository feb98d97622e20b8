//! An idle peering writes nothing: once rome is peered to milan and a namespace is offloaded,
//! the replicated objects (NamespaceMaps, ResourceSlices, Renews) and the twin namespace stay
//! untouched for a minute on both clusters. Counted with watches, so every write shows,
//! whoever makes it (the replicator once rewrote the NamespaceMap ~33 times a second).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{Renew, ResourceSlice};
use liqo_core::api::offloading::v1beta1::{NamespaceMap, NamespaceOffloading};
use liqo_testenv::eventually;
use support::*;

/// Counts the changes of objects of kind K (after the initial list) until the task is aborted;
/// prints each, with the manager that wrote it last.
fn count_writes<K>(
    client: Client,
    what: &'static str,
    counter: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let api: Api<K> = Api::all(client);
        let mut initialized = false;
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::InitDone) => initialized = true,
                Ok(Event::Apply(o) | Event::Delete(o)) if initialized => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let manager = o
                        .meta()
                        .managed_fields
                        .iter()
                        .flatten()
                        .max_by_key(|m| m.time.clone().map(|t| t.0))
                        .and_then(|m| m.manager.clone())
                        .unwrap_or_default();
                    eprintln!(
                        "write: {what} {}/{} rv {} by {manager}",
                        o.namespace().unwrap_or_default(),
                        o.name_any(),
                        o.resource_version().unwrap_or_default()
                    );
                }
                _ => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_peering_writes_nothing() {
    build_virtual_kubelet();
    let clusters = clusters(&["iw-rome", "iw-milan"]).await;
    let (rome, milan) = (&clusters[0], &clusters[1]);
    let _m_rome = manager(rome, "rome", &[]);
    let _m_milan = manager(milan, "milan", &[]);
    ready(rome).await;
    ready(milan).await;
    assert!(peer(rome, milan, &[]).status.success());
    virtual_node_ready(rome, "milan").await;
    rome.create_namespace("idle").await.unwrap();
    liqoctl_ok(rome, &["offload", "namespace", "idle"]);
    let offloadings: Api<NamespaceOffloading> = Api::namespaced(rome.client(), "idle");
    eventually("offloading Ready", WAIT, || async {
        let o = offloadings.get_opt("offloading").await.ok()??;
        (format!("{:?}", o.status?.offloading_phase?) == "Ready").then_some(())
    })
    .await;
    // Converged: give the controllers a moment to finish what the last events started.
    tokio::time::sleep(Duration::from_secs(10)).await;

    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in [rome.client(), milan.client()] {
        tasks.push(count_writes::<NamespaceMap>(
            c.clone(),
            "NamespaceMap",
            counter.clone(),
        ));
        tasks.push(count_writes::<ResourceSlice>(
            c.clone(),
            "ResourceSlice",
            counter.clone(),
        ));
        tasks.push(count_writes::<Renew>(c.clone(), "Renew", counter.clone()));
        tasks.push(count_writes::<Namespace>(
            c.clone(),
            "Namespace",
            counter.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    for t in tasks {
        t.abort();
    }
    let writes = counter.load(Ordering::SeqCst);
    eprintln!("writes to replicated objects in 60 s of idle peering: {writes}");
    assert_eq!(
        writes, 0,
        "an idle peering must not write (see the writes above)"
    );
}
