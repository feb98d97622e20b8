//! Start-up time of liqo-testenv clusters, as JSON lines:
//! `{"bench": ..., "value": ..., "unit": "s"}`.
//!
//! ```sh
//! cargo bench -p liqo-testenv --bench startup
//! ```
//!
//! Measures one cluster started alone (several runs) and two clusters started in parallel
//! (what most liqo-rs integration tests do). Each value is from start to ready (all components
//! healthy, nodes Ready).

use std::time::Instant;

use liqo_testenv::{Cluster, ClusterConfig};

const RUNS: usize = 3;

fn emit(bench: &str, value: f64) {
    println!("{{\"bench\":\"{bench}\",\"value\":{value:.3},\"unit\":\"s\"}}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut single = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let cluster = Cluster::start(ClusterConfig::new(format!("bench-startup-{run}"))).await?;
        single.push(started.elapsed().as_secs_f64());
        drop(cluster);
    }
    single.sort_by(f64::total_cmp);
    emit("testenv_start_one_cluster_min", single[0]);
    emit("testenv_start_one_cluster_median", single[RUNS / 2]);
    emit("testenv_start_one_cluster_max", single[RUNS - 1]);

    let started = Instant::now();
    let clusters = Cluster::start_all(vec![
        ClusterConfig::new("bench-startup-a"),
        ClusterConfig::new("bench-startup-b"),
    ])
    .await?;
    emit(
        "testenv_start_two_clusters_parallel",
        started.elapsed().as_secs_f64(),
    );
    let started = Instant::now();
    drop(clusters);
    emit("testenv_stop_two_clusters", started.elapsed().as_secs_f64());
    Ok(())
}
