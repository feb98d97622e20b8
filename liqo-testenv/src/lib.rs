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
mod pki;
mod process;

pub use binaries::{BIN_ENV, Binaries, KUBERNETES_VERSION, REQUIRED};
pub use cluster::{
    CLUSTER_LABEL, Cluster, ClusterConfig, KWOK_NODE_ANNOTATION, NodeCapacity,
    client_from_kubeconfig, default_base_dir,
};
pub use error::{Error, Result};
pub use process::{Component, Daemon};
