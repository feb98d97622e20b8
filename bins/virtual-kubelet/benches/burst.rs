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

use futures::StreamExt as _;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt as _, watcher},
};
use liqo_core::runtime::Shutdown;
use liqo_reflect::shadowpod;
use liqo_testenv::{Cluster, ClusterConfig, Daemon, NodeCapacity};
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

/// Per pod labelled `app=burst` in `pods`, the time from `start` until a watch first showed
/// it Running, once `replicas` of them are. A watch, not polling: listing 1,000 pods several
/// times a second would load the API servers being measured.
async fn running_times(pods: Api<Pod>, replicas: usize, start: Instant) -> Vec<Duration> {
    let mut seen: HashMap<String, Duration> = HashMap::new();
    let stream = watcher(pods, watcher::Config::default().labels("app=burst")).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let deadline = Duration::from_secs(900);
    while seen.len() < replicas {
        let next = tokio::time::timeout(deadline.saturating_sub(start.elapsed()), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {replicas} pods Running", seen.len()));
        let Some(Ok(pod)) = next else { continue };
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            seen.entry(pod.name_any())
                .or_insert_with(|| start.elapsed());
        }
    }
    let mut all: Vec<Duration> = seen.into_values().collect();
    all.sort();
    all
}

/// CPU seconds used so far by the control-plane processes of each cluster, the virtual
/// kubelet and this process (the provider's ShadowPod controller and the measuring watches).
fn cpu_seconds(rome: &Cluster, milan: &Cluster, vk: &Daemon) -> serde_json::Value {
    let of = |pid: u32| liqo_testenv::cpu_time_of(pid).map_or(0.0, |d| d.as_secs_f64());
    let cluster = |c: &Cluster| {
        c.pids()
            .iter()
            .map(|(component, pid)| (component.name().to_owned(), json!(of(*pid))))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "rome": cluster(rome),
        "milan": cluster(milan),
        "virtual_kubelet": vk.cpu_time().map_or(0.0, |d| d.as_secs_f64()),
        "bench_process": of(std::process::id()),
    })
}

/// Requests served so far by a cluster's API server, per `VERB resource/subresource`, from
/// its `apiserver_request_total` metric (watches and the metrics scrape itself excluded).
async fn requests(client: &Client) -> serde_json::Value {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let mut counts = serde_json::Map::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        let verb = label("verb");
        if matches!(verb.as_str(), "WATCH" | "CONNECT") || label("resource").is_empty() {
            continue;
        }
        let mut key = format!("{verb} {}", label("resource"));
        let subresource = label("subresource");
        if !subresource.is_empty() {
            key = format!("{key}/{subresource}");
        }
        let value: f64 = value.parse().unwrap_or(0.0);
        let entry = counts.entry(key).or_insert(json!(0.0));
        *entry = json!(entry.as_f64().unwrap_or(0.0) + value);
    }
    counts.into()
}

/// Pins every thread of `pid` to CPU `cpu` (the threads it starts later inherit it).
fn pin(pid: u32, cpu: usize) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(tid) = task.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only
        // read and write the set passed by reference.
        #[allow(unsafe_code)]
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// `value` without the zero leaves.
fn nonzero(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| v.as_f64() != Some(0.0))
            .map(|(k, v)| (k, nonzero(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other,
    }
}

/// `after - before`, per key, recursively.
fn delta(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    match (before, after) {
        (serde_json::Value::Object(b), serde_json::Value::Object(a)) => a
            .iter()
            .map(|(k, v)| (k.clone(), delta(b.get(k).unwrap_or(&json!(0.0)), v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => json!(
            ((after.as_f64().unwrap_or(0.0) - before.as_f64().unwrap_or(0.0)) * 100.0).round()
                / 100.0
        ),
    }
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
    // Workers of the virtual kubelet's pod reflector and of the ShadowPod controller.
    let workers = std::env::var("LIQO_BURST_WORKERS").unwrap_or_else(|_| "50".into());
    let shutdown = Shutdown::new();
    let controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config {
            workers: workers.parse().unwrap(),
            ..shadowpod::Config::default()
        },
        shutdown.wait_owned(),
    ));
    let mut vk = start_virtual_kubelet(&rome, &["--pod-workers", &workers]);
    // Let the virtual node become Ready before the burst.
    liqo_testenv::eventually("the virtual node", Duration::from_secs(60), || async {
        Api::<k8s_openapi::api::core::v1::Node>::all(rome.client())
            .get_opt(support::NODE)
            .await
            .unwrap()
            .filter(|n| support::ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;

    // LIQO_BURST_PIN=1: each cluster on a core of its own (the consumer's control plane and
    // virtual kubelet on CPU 0, the provider's control plane, its ShadowPod controller and this
    // process on CPU 1), as two clusters on separate machines would be. The vanilla burst then
    // has the provider's core, the offloaded one both.
    let pinned = std::env::var("LIQO_BURST_PIN").is_ok_and(|v| v == "1");
    if pinned {
        for (_, pid) in rome.pids() {
            pin(pid, 0);
        }
        pin(vk.pid(), 0);
        for (_, pid) in milan.pids() {
            pin(pid, 1);
        }
        pin(std::process::id(), 1);
    }
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_setup"), "pinned": pinned, "workers": workers})
    );
    let cpu_start = cpu_seconds(&rome, &milan, &vk);
    let requests_start =
        json!({"rome": requests(&rome.client()).await, "milan": requests(&milan.client()).await});
    let vanilla = burst(milan.client(), "vanilla", n, false).await;
    let cpu_vanilla = cpu_seconds(&rome, &milan, &vk);
    let requests_vanilla =
        json!({"rome": requests(&rome.client()).await, "milan": requests(&milan.client()).await});
    let wall = k8s_openapi::jiff::Timestamp::now();
    let remote = tokio::spawn(running_times(
        Api::namespaced(milan.client(), "demo-rome"),
        n,
        Instant::now(),
    ));
    let offloaded = burst(rome.client(), "demo", n, true).await;
    let remote = remote.await.unwrap();
    let cpu_offloaded = cpu_seconds(&rome, &milan, &vk);
    let requests_offloaded =
        json!({"rome": requests(&rome.client()).await, "milan": requests(&milan.client()).await});
    for (phase, before, after) in [
        ("vanilla", &requests_start, &requests_vanilla),
        ("offloaded", &requests_vanilla, &requests_offloaded),
    ] {
        println!(
            "{}",
            json!({"bench": format!("burst_{n}_requests_{phase}"), "value": nonzero(delta(before, after))})
        );
    }
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_cpu_seconds_vanilla"), "value": delta(&cpu_start, &cpu_vanilla)})
    );
    println!(
        "{}",
        json!({"bench": format!("burst_{n}_cpu_seconds_offloaded"), "value": delta(&cpu_vanilla, &cpu_offloaded)})
    );
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
