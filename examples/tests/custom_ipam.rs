//! The custom IPAM example runs the controller-manager library with its own allocator: a
//! Network created on a real control plane is allocated through it (its audit line names
//! the CIDR the status reports).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use liqo_core::api::ipam::v1alpha1::{Network, NetworkSpec};
use liqo_core::api::networking::v1beta1::Cidr;
use liqo_testenv::{Cluster, ClusterConfig, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_manager_library_runs_a_custom_ipam() {
    let cluster = Cluster::start(ClusterConfig::new("ex-ipam").nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "liqo-examples",
            "--example",
            "custom_ipam",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "building the example");
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/custom_ipam");
    let pod = cluster.pod_cidr().to_string();
    let manager = cluster
        .daemon(
            "custom-ipam",
            &example,
            [
                "--cluster-id",
                "ex-ipam",
                "--pod-cidr",
                &pod,
                "--enable-offloading=false",
            ],
        )
        .unwrap();
    // A peer's pod CIDR that collides with ours: remapped by the allocator.
    let mut network = Network::new(
        "peer-pods",
        NetworkSpec {
            cidr: Cidr(pod.clone()),
            pre_allocated: 0,
        },
    );
    network.metadata.namespace = Some("liqo".into());
    let api: Api<Network> = Api::namespaced(cluster.client(), "liqo");
    eventually("the liqo namespace", Duration::from_secs(60), || async {
        api.create(&PostParams::default(), &network)
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let remapped = eventually("the Network allocated", Duration::from_secs(60), || async {
        api.get("peer-pods").await.ok()?.status?.cidr.map(|c| c.0)
    })
    .await;
    assert_ne!(remapped, pod, "a colliding CIDR is remapped");
    let log = std::fs::read_to_string(manager.log_path()).unwrap();
    assert!(
        log.contains(&format!("ipam: network {pod} -> {remapped}")),
        "the plug-in did not see the allocation:\n{log}"
    );
}
