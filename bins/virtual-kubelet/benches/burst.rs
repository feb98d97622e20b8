//! Benchmark: a burst of N pods (env `LIQO_BURST_PODS`, default 100) offloaded through the
//! virtual kubelet, against the same burst created directly on the provider (vanilla) in the
//! same run. Prints JSON lines; asserts nothing about time.
//!
//! `cargo bench -p liqo-virtual-kubelet --bench burst`

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
};
use liqo_core::runtime::Shutdown;
use liqo_reflect::shadowpod;
use liqo_testenv::{ClusterConfig, NodeCapacity};
use serde_json::json;
use support::{accept_mapping, setup_with, start_virtual_kubelet};

fn deployment(replicas: usize, offloaded: bool) -> Deployment {
    let mut spec = json!({"containers": [{"name": "web", "image": "nginx"}]});
    if offloaded {
        spec["nodeSelector"] = json!({"liqo.io/type": "virtual-node"});
        spec["tolerations"] = json!([{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": "burst"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "burst"}},
            "template": {"metadata": {"labels": {"app": "burst"}}, "spec": spec},
        },
    }))
    .unwrap()
}

/// Creates the Deployment and returns, per pod, the time from creation until it was first
/// seen Running (polled every 200 ms).
async fn burst(client: Client, namespace: &str, replicas: usize, offloaded: bool) -> Vec<Duration> {
    let start = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment(replicas, offloaded))
        .await
        .unwrap();
    running_times(Api::namespaced(client, namespace), replicas, start).await
}

/// Per pod labelled `app=burst` in `pods`, the time from `start` until it was first seen
/// Running (polled every 200 ms), once `replicas` of them are.
async fn running_times(pods: Api<Pod>, replicas: usize, start: Instant) -> Vec<Duration> {
    let mut seen: HashMap<String, Duration> = HashMap::new();
    let deadline = Duration::from_secs(900);
    while seen.len() < replicas {
        assert!(
            start.elapsed() < deadline,
            "only {} of {replicas} pods Running",
            seen.len()
        );
        for pod in pods
            .list(&ListParams::default().labels("app=burst"))
            .await
            .unwrap()
            .items
        {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running {
                seen.entry(pod.name_any())
                    .or_insert_with(|| start.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut all: Vec<Duration> = seen.into_values().collect();
    all.sort();
    all
}

/// Mean time (s) at which each stage of the offloaded pods happened, from API timestamps
/// (1 s resolution): where the time goes.
async fn stages(rome: &Client, milan: &Client, start: k8s_openapi::jiff::Timestamp) {
    use liqo_core::api::offloading::v1beta1::ShadowPod;
    let since = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
        (t.0.as_millisecond() - start.as_millisecond()) as f64 / 1000.0
    };
    let condition = |p: &Pod, type_: &str| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(since)
    };
    let lp = Api::<Pod>::namespaced(rome.clone(), "demo")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let sp = Api::<ShadowPod>::namespaced(milan.clone(), "demo-rome")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let rp = Api::<Pod>::namespaced(milan.clone(), "demo-rome")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let scheduled: Vec<f64> =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(rome.clone(), "demo")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .filter_map(|e| e.event_time.as_ref())
            .map(|t| (t.0.as_millisecond() - start.as_millisecond()) as f64 / 1000.0)
            .collect();
    let last = scheduled.iter().copied().fold(0.0, f64::max);
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let created = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.creation_timestamp.as_ref().map(since).unwrap_or_default()
    };
    println!(
        "{}",
        json!({
            "bench": "burst_stages_mean_s",
            "local_bound_last": last,
            "local_bound": mean(scheduled.clone()),
            "local_created": mean(lp.iter().map(|p| created(&p.metadata)).collect()),
            "local_scheduled": mean(lp.iter().filter_map(|p| condition(p, "PodScheduled")).collect()),
            "shadow_created": mean(sp.iter().map(|p| created(&p.metadata)).collect()),
            "remote_created": mean(rp.iter().map(|p| created(&p.metadata)).collect()),
            "remote_scheduled": mean(rp.iter().filter_map(|p| condition(p, "PodScheduled")).collect()),
            "remote_ready": mean(rp.iter().filter_map(|p| condition(p, "Ready")).collect()),
        })
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(offloaded_burst_against_vanilla());
}

async fn offloaded_burst_against_vanilla() {
    let n: usize = std::env::var("LIQO_BURST_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let capacity = NodeCapacity {
        pods: (2 * n + 50).to_string(),
        ..NodeCapacity::default()
    };
    let (rome, milan) = setup_with(
        ClusterConfig::new("lof-burst-rome").nodes(0),
        ClusterConfig::new("lof-burst-milan")
            .nodes(1)
            .node_capacity(capacity),
        &(2 * n + 50).to_string(),
    )
    .await;
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    milan.create_namespace("vanilla").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;
    let shutdown = Shutdown::new();
    let controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let mut vk = start_virtual_kubelet(&rome, &[]);
    // Let the virtual node become Ready before the burst.
    liqo_testenv::eventually("the virtual node", Duration::from_secs(60), || async {
        Api::<k8s_openapi::api::core::v1::Node>::all(rome.client())
            .get_opt(support::NODE)
            .await
            .unwrap()
            .filter(|n| support::ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;

    let vanilla = burst(milan.client(), "vanilla", n, false).await;
    let wall = k8s_openapi::jiff::Timestamp::now();
    let remote = tokio::spawn(running_times(
        Api::namespaced(milan.client(), "demo-rome"),
        n,
        Instant::now(),
    ));
    let offloaded = burst(rome.client(), "demo", n, true).await;
    let remote = remote.await.unwrap();
    stages(&rome.client(), &milan.client(), wall).await;
    for (name, v) in [
        ("vanilla", &vanilla),
        ("offloaded", &offloaded),
        ("offloaded_remote_side", &remote),
    ] {
        println!(
            "{}",
            json!({"bench": format!("burst_{n}_{name}"), "p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "max": percentile(v, 1.0), "unit": "s"})
        );
    }
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_ratio_max"), "value": percentile(&offloaded, 1.0) / percentile(&vanilla, 1.0), "unit": "x vanilla"})
    );
    vk.check_running().unwrap();
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_virtual_kubelet_peak_memory"), "value": vk.peak_memory_bytes().unwrap_or(0) / (1024 * 1024), "unit": "MiB"})
    );
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_virtual_kubelet_cpu"), "value": vk.cpu_time().map_or(0.0, |d| d.as_secs_f64()), "unit": "s"})
    );
    shutdown.trigger();
    controller.await.unwrap().unwrap();
}
