//! Real local Kubernetes control planes for liqo-rs tests, benchmarks and the playground.
//!
//! [`Cluster::start`] runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
//! [kwok](https://kwok.sigs.k8s.io) as processes on 127.0.0.1, with certificates generated in
//! Rust, and returns once the cluster is ready, with a [`kube::Client`] and a kubeconfig path.
//! kwok simulates the kubelets of N fake nodes, so pods get scheduled, become Running and get
//! IPs from the cluster's pod CIDR without any container runtime.
//!
//! The binaries come from `hack/k8s-binaries.sh` (Kubernetes v1.36 built from Go modules) or
//! from the directory in `LIQO_K8S_BIN`; see [`Binaries`].
//!
//! ```no_run
//! use liqo_testenv::{Cluster, ClusterConfig};
//!
//! # async fn run() -> liqo_testenv::Result<()> {
//! // Two clusters in parallel, with the same (overlapping) pod CIDR.
//! let cidr = "10.0.0.0/16".parse().unwrap();
//! let clusters = Cluster::start_all(vec![
//!     ClusterConfig::new("rome").pod_cidr(cidr),
//!     ClusterConfig::new("milan").pod_cidr(cidr).nodes(3),
//! ])
//! .await?;
//! for cluster in &clusters {
//!     println!("{}: {}", cluster.name(), cluster.kubeconfig_path().display());
//! }
//! // Dropping the clusters stops every process.
//! # Ok(()) }
//! ```
//!
//! # Process lifetime
//!
//! Every component runs in its own process group. Dropping a [`Cluster`] (also during a
//! panic) kills them; if the owning process is killed, the kernel kills them through the
//! parent-death signal of the thread that started them (so start clusters from a thread that
//! lives as long as the cluster: a test's own thread or a runtime worker, not a
//! `spawn_blocking` thread). Logs stay in `target/testenv/<cluster>/<component>.log`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod binaries;
mod cluster;
mod error;
pub mod image;
pub mod kubectl;
mod node;
mod pki;
mod process;

pub use binaries::{BIN_ENV, Binaries, KUBERNETES_VERSION, REQUIRED};
pub use cluster::{
    CLUSTER_LABEL, Cluster, ClusterConfig, KWOK_CONTAINER_LOG_LINES, KWOK_NODE_ANNOTATION,
    NodeCapacity, client_from_kubeconfig, default_base_dir,
};
pub use error::{Error, Result};
pub use node::{NODE_BINARIES, REAL_NODE_LABEL, UNDERLAY_BRIDGE, UNDERLAY_HOST};

/// Polls `check` every 100 ms until it returns `Some`, and returns that value: the way tests
/// wait for a controller to act, without asserting how long it takes.
///
/// # Panics
///
/// When `within` passes first, naming `what`: it is an assertion for tests.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
///
/// let mut polls = 0;
/// let value = liqo_testenv::eventually("the third poll", Duration::from_secs(5), || {
///     polls += 1;
///     let done = polls == 3;
///     async move { done.then_some(42) }
/// })
/// .await;
/// assert_eq!(value, 42);
/// # }
/// ```
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            // Shown with the output of a failing test: where the time went.
            if start.elapsed() > std::time::Duration::from_secs(2) {
                eprintln!("waited {:.1?} for {what}", start.elapsed());
            }
            return value;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
pub use process::{Component, Daemon, cpu_time_of};
