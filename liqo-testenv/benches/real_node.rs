//! Costs of liqo-testenv's real nodes beside kwok's fake ones, as JSON lines
//! (`{"bench": ..., "value": ..., "unit": ...}`). Needs root.
//!
//! ```sh
//! cargo bench -p liqo-testenv --bench real_node
//! ```
//!
//! - cluster start to ready: a kwok node only (baseline) and a real node (kubelet Ready,
//!   CoreDNS available);
//! - pod create to Running: on the kwok node (baseline) and on the real node, same cluster;
//! - idle CPU (% of one core) and RSS of the real node's processes (kubelet, containerd,
//!   kube-proxy, shims, containers) over 30 s with the pods running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use liqo_testenv::{Cluster, ClusterConfig};

fn emit(bench: &str, value: f64, unit: &str) {
    println!("{{\"bench\":\"{bench}\",\"value\":{value:.3},\"unit\":\"{unit}\"}}");
}

async fn pod_running(cluster: &Cluster, name: &str, node: &str) -> f64 {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "imagePullPolicy": "Never",
                "image": format!("localhost/liqo-rs/busybox:{}", liqo_testenv::image::TAG),
                "command": ["sleep", "3600"]}],
        },
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let started = Instant::now();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    loop {
        let p = pods.get(name).await.unwrap();
        if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            return started.elapsed().as_secs_f64();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (CPU ticks, RSS KiB) of the processes whose command line or cgroup names `marker`.
fn usage(marker: &str, cgroup: &str) -> (u64, u64) {
    let (mut ticks, mut rss) = (0, 0);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(marker) && !cg.contains(cgroup) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        ticks += fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        rss += status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (ticks, rss)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the real-node benchmark needs root");
        return Ok(());
    }
    let started = Instant::now();
    let kwok = Cluster::start(ClusterConfig::new("bench-rn-kwok").nodes(1)).await?;
    emit(
        "cluster_start_kwok_node_baseline",
        started.elapsed().as_secs_f64(),
        "s",
    );
    drop(kwok);
    let started = Instant::now();
    let cluster = Cluster::start(ClusterConfig::new("bench-rn").nodes(1).real_nodes(1)).await?;
    emit(
        "cluster_start_real_node",
        started.elapsed().as_secs_f64(),
        "s",
    );

    emit(
        "pod_create_to_running_kwok_baseline",
        pod_running(&cluster, "on-kwok", "bench-rn-node-0").await,
        "s",
    );
    for i in 0..3 {
        let secs = pod_running(&cluster, &format!("on-real-{i}"), "bench-rn-real-0").await;
        emit(&format!("pod_create_to_running_real_{i}"), secs, "s");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let marker = cluster.dir().join("nodes").display().to_string();
    let cgroup = "/liqo-testenv-bench-rn-real-0";
    let (t0, _) = usage(&marker, cgroup);
    let window = Duration::from_secs(30);
    tokio::time::sleep(window).await;
    let (t1, rss) = usage(&marker, cgroup);
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    #[allow(clippy::cast_precision_loss)]
    let cpu = (t1 - t0) as f64 / hz / window.as_secs_f64() * 100.0;
    emit("real_node_idle_cpu_4_pods", cpu, "% of one core");
    #[allow(clippy::cast_precision_loss)]
    emit("real_node_rss_4_pods", rss as f64 / 1024.0, "MiB");
    Ok(())
}
