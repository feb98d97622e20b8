//! IPAM at scale on a real control plane, as JSON lines
//! (`{"bench": ..., "value": ..., "unit": ...}`).
//!
//! ```sh
//! cargo bench -p liqo-controller-manager --bench ipam_networks
//! ```
//!
//! Creates 1,000 Network resources (a third of them asking for the same CIDR, so they must be
//! remapped) with `liqo-controller-manager` running, and reports:
//! - `vanilla_create_1000_networks`: the time the API server takes to store the 1,000 objects
//!   (the baseline: plain Kubernetes, no controller involved);
//! - `ipam_1000_networks_all_status`: from the first create until every Network has its
//!   allocation in its status;
//! - `ipam_restart_rebuild_1000`: a restart of the controller until it serves again (a new
//!   Network gets its status), which includes rebuilding its state from the 1,000 statuses;
//! - the controller's peak resident memory and CPU time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking

use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use liqo_core::api::{
    ipam::v1alpha1::{Network, NetworkSpec},
    networking::v1beta1::Cidr,
};
use liqo_testenv::{Cluster, ClusterConfig, Daemon};

const N: usize = 1000;
const NS: &str = "bench";

fn emit(bench: &str, value: f64, unit: &str) {
    println!("{{\"bench\":\"{bench}\",\"value\":{value:.3},\"unit\":\"{unit}\"}}");
}

fn manager(cluster: &Cluster) -> Daemon {
    let pod_cidr = cluster.pod_cidr().to_string();
    let args = ["--pod-cidr", pod_cidr.as_str(), "--ipam-workers", "8"];
    cluster
        .daemon(
            "liqo-controller-manager",
            env!("CARGO_BIN_EXE_liqo-controller-manager"),
            args,
        )
        .unwrap()
}

async fn allocated(api: &Api<Network>) -> usize {
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|n| n.status.as_ref().is_some_and(|s| s.cidr.is_some()))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let cluster = Cluster::start(ClusterConfig::new("bench-ipam").nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    Api::all(cluster.client())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<Network> = Api::namespaced(cluster.client(), NS);
    let mut cm = manager(&cluster);
    // Wait until it serves (its own networks are allocated).
    let own: Api<Network> = Api::namespaced(cluster.client(), "liqo");
    while allocated(&own).await < 3 {
        cm.check_running().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let start = Instant::now();
    stream::iter(0..N)
        .map(|i| {
            let api = api.clone();
            let cidr = if i % 3 == 0 {
                "10.0.0.0/24".to_owned()
            } else {
                format!("10.{}.{}.0/24", 1 + i / 256, i % 256)
            };
            async move {
                let n = Network::new(
                    &format!("net-{i:04}"),
                    NetworkSpec {
                        cidr: Cidr(cidr),
                        pre_allocated: 0,
                    },
                );
                api.create(&PostParams::default(), &n).await.unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    emit(
        "vanilla_create_1000_networks",
        start.elapsed().as_secs_f64(),
        "s",
    );
    while allocated(&api).await < N {
        cm.check_running().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    emit(
        "ipam_1000_networks_all_status",
        start.elapsed().as_secs_f64(),
        "s",
    );
    emit(
        "ipam_controller_peak_rss",
        cm.peak_memory_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        "MiB",
    );
    emit(
        "ipam_controller_cpu",
        cm.cpu_time().unwrap_or_default().as_secs_f64(),
        "s",
    );

    cm.kill();
    let start = Instant::now();
    let mut cm = manager(&cluster);
    let n = Network::new(
        "after-restart",
        NetworkSpec {
            cidr: Cidr("10.0.0.0/24".to_owned()),
            pre_allocated: 0,
        },
    );
    api.create(&PostParams::default(), &n).await.unwrap();
    while allocated(&api).await < N + 1 {
        cm.check_running().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emit(
        "ipam_restart_rebuild_1000",
        start.elapsed().as_secs_f64(),
        "s",
    );
    emit(
        "ipam_controller_peak_rss_after_restart",
        cm.peak_memory_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        "MiB",
    );
}
