//! Reflection of 1,000 ConfigMaps and 1,000 EndpointSlices between two real control planes, as JSON lines
//! (`{"bench": ..., "value": ..., "unit": ...}`).
//!
//! ```sh
//! cargo bench -p liqo-reflect --bench reflection
//! ```
//!
//! - engine: 1,000 ConfigMaps are created locally (64 at a time) while the ReflectionManager
//!   runs; latency is from the local create returning to the twin appearing in a watch of the
//!   remote namespace; throughput is 1,000 over the time from the first create to the last twin.
//! - baseline, in the same run and measured the same way: a plain copy loop with kube-client
//!   driven by a watch of the local namespace (get the local object, create the copy remotely,
//!   one after the other), with no queue, stores, ownership checks or retries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{core::v1::ConfigMap, discovery::v1::EndpointSlice};
use kube::{
    Api, ResourceExt,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use liqo_core::api::offloading::v1beta1::ShadowEndpointSlice;
use liqo_core::ids::NamespacePair;
use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_reflect::forge::{EndpointSliceForge, Forge, ForgeContext, RemoteNodes};
use liqo_reflect::{Clusters, ReflectionManager, ReflectorConfig};
use liqo_testenv::{Cluster, ClusterConfig};
use serde_json::json;

const N: usize = 1000;

fn emit(bench: &str, value: f64, unit: &str) {
    println!("{{\"bench\":\"{bench}\",\"value\":{value:.3},\"unit\":\"{unit}\"}}");
}

fn cm(name: &str) -> ConfigMap {
    // The ConfigMap variant of the workload.
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"key": "value", "n": name}}))
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main]
async fn main() {
    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new("bench-refl-rome").nodes(0),
        ClusterConfig::new("bench-refl-milan").nodes(0),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    for ns in ["engine", "copy", "eps-engine", "eps-copy"] {
        rome.create_namespace(ns).await.unwrap();
        milan.create_namespace(ns).await.unwrap();
    }
    let rss_before = peak_rss_mib();

    // Engine.
    let manager = ReflectionManager::builder(Clusters {
        local: rome.client(),
        remote: milan.client(),
        local_id: "rome".parse().unwrap(),
        remote_id: "milan".parse().unwrap(),
    })
    .config(
        "configmaps",
        ReflectorConfig {
            workers: 8,
            ..ReflectorConfig::default()
        },
    )
    .with_default_reflectors()
    .build();
    manager
        .start_namespace(&NamespacePair::new("engine", "engine").unwrap())
        .await
        .unwrap();
    let (latencies, total) = burst::<ConfigMap, ConfigMap>(&rome, &milan, "engine", cm).await;
    report("configmaps", "engine", &latencies, total);
    emit(
        "reflect_process_peak_rss_growth",
        peak_rss_mib() - rss_before,
        "MiB",
    );
    manager
        .stop_namespace(&NamespacePair::new("engine", "engine").unwrap())
        .await
        .unwrap();

    // Baseline: a plain copy loop driven by a watch of the local namespace: for each new
    // object, get it and create the copy remotely, one at a time. No queue, no stores, no
    // ownership checks, no retries.
    let local_api: Api<ConfigMap> = Api::namespaced(rome.client(), "copy");
    let remote_api: Api<ConfigMap> = Api::namespaced(milan.client(), "copy");
    let copier = tokio::spawn(async move {
        let mut events = std::pin::pin!(
            watcher(local_api.clone(), watcher::Config::default()).applied_objects()
        );
        while let Ok(Some(obj)) = events.try_next().await {
            let Ok(local) = local_api.get(&obj.name_any()).await else {
                continue;
            };
            let mut copy = cm(&local.name_any());
            copy.data = local.data.clone();
            let _ = remote_api.create(&PostParams::default(), &copy).await;
        }
    });
    let (latencies, total) = burst::<ConfigMap, ConfigMap>(&rome, &milan, "copy", cm).await;
    report("configmaps", "copy_loop", &latencies, total);
    copier.abort();

    // EndpointSlices, reflected as ShadowEndpointSlices: engine, then the same copy loop (which
    // uses the same pure forge for the translation, so only the machinery differs).
    milan.install_crds(liqo_core::api::crds()).await.unwrap();
    let mapping = Mapping::new(rome.pod_cidr().into(), "10.222.0.0/16".parse().unwrap()).unwrap();
    let forge = EndpointSliceForge::new(
        RemoteCidrs {
            pod: vec![mapping],
            external: vec![],
        },
        RemoteNodes::from_fn(|_| false),
    );
    let manager = ReflectionManager::builder(Clusters {
        local: rome.client(),
        remote: milan.client(),
        local_id: "rome".parse().unwrap(),
        remote_id: "milan".parse().unwrap(),
    })
    .with_endpoint_slices(forge.clone())
    .build();
    manager
        .start_namespace(&NamespacePair::new("eps-engine", "eps-engine").unwrap())
        .await
        .unwrap();
    let (latencies, total) =
        burst::<EndpointSlice, ShadowEndpointSlice>(&rome, &milan, "eps-engine", slice).await;
    report("endpointslices", "engine", &latencies, total);
    manager
        .stop_namespace(&NamespacePair::new("eps-engine", "eps-engine").unwrap())
        .await
        .unwrap();

    let local_api: Api<EndpointSlice> = Api::namespaced(rome.client(), "eps-copy");
    let remote_api: Api<ShadowEndpointSlice> = Api::namespaced(milan.client(), "eps-copy");
    let ctx = ForgeContext {
        local_cluster: "rome".parse().unwrap(),
        remote_cluster: "milan".parse().unwrap(),
        local_namespace: "eps-copy".into(),
        remote_namespace: "eps-copy".into(),
    };
    let copier = tokio::spawn(async move {
        let mut events = std::pin::pin!(
            watcher(local_api.clone(), watcher::Config::default()).applied_objects()
        );
        while let Ok(Some(obj)) = events.try_next().await {
            let Ok(local) = local_api.get(&obj.name_any()).await else {
                continue;
            };
            let Some(mut shadow) = forge.remote(&local, &ctx) else {
                continue;
            };
            shadow.metadata.namespace = Some("eps-copy".into());
            let _ = remote_api.create(&PostParams::default(), &shadow).await;
        }
    });
    let (latencies, total) =
        burst::<EndpointSlice, ShadowEndpointSlice>(&rome, &milan, "eps-copy", slice).await;
    report("endpointslices", "copy_loop", &latencies, total);
    copier.abort();
}

fn report(kind: &str, which: &str, latencies: &[Duration], total: Duration) {
    let name = |m: &str| format!("reflect_1000_{kind}_{which}_{m}");
    emit(&name("p50"), percentile(latencies, 0.5), "ms");
    emit(&name("p99"), percentile(latencies, 0.99), "ms");
    emit(&name("max"), percentile(latencies, 1.0), "ms");
    emit(
        &name("throughput"),
        N as f64 / total.as_secs_f64(),
        "objects/s",
    );
}

/// Creates N objects (from `make`) in `ns` of rome, 64 at a time, and waits until each has
/// a twin of kind `R` in `ns` of milan. Returns each object's latency from its local create to
/// its twin being seen by a watch, sorted, and the time from the first create to the last twin.
async fn burst<L, R>(
    rome: &Cluster,
    milan: &Cluster,
    ns: &str,
    make: fn(&str) -> L,
) -> (Vec<Duration>, Duration)
where
    L: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    R: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let remote_api: Api<R> = Api::namespaced(milan.client(), ns);
    let watch_seen = seen.clone();
    let watch = tokio::spawn(async move {
        let mut events =
            std::pin::pin!(watcher(remote_api, watcher::Config::default()).applied_objects());
        while let Ok(Some(obj)) = events.try_next().await {
            watch_seen
                .lock()
                .unwrap()
                .entry(obj.name_any())
                .or_insert_with(Instant::now);
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await; // let the watches settle
    let local_api: Api<L> = Api::namespaced(rome.client(), ns);
    let start = Instant::now();
    stream::iter(0..N)
        .map(|i| {
            let api = local_api.clone();
            let created = created.clone();
            async move {
                let name = format!("obj-{i:04}");
                api.create(&PostParams::default(), &make(&name))
                    .await
                    .unwrap();
                created.lock().unwrap().insert(name, Instant::now());
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    while seen
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("obj-"))
        .count()
        < N
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed();
    watch.abort();
    let mut latencies: Vec<Duration> = {
        let created = created.lock().unwrap();
        let seen = seen.lock().unwrap();
        created
            .iter()
            .map(|(k, t)| seen[k].saturating_duration_since(*t))
            .collect()
    };
    latencies.sort();
    (latencies, total)
}

fn slice(name: &str) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "bench"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.100.1.1"], "conditions": {"ready": true}}]
    }))
    .unwrap()
}
