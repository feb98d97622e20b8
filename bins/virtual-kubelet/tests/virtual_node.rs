//! The virtual kubelet binary on two real control planes: the Node named after the
//! VirtualNode appears Ready with the documented labels, taint and resources, its Lease is
//! renewed, and it turns NotReady while the provider's API server is down and Ready again
//! once it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use k8s_openapi::api::{coordination::v1::Lease, core::v1::Node};
use kube::Api;
use liqo_testenv::{Component, eventually};
use support::{NODE, WAIT, ready, setup, start_virtual_kubelet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_node_follows_the_provider_health() {
    let (rome, mut milan) = setup("lof-vn-rome", "lof-vn-milan", 0).await;
    let mut vk = start_virtual_kubelet(&rome, &[]);
    let nodes: Api<Node> = Api::all(rome.client());

    let node = eventually("the virtual node to be Ready", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .filter(|n| ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;
    vk.check_running().unwrap();
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["liqo.io/type"], "virtual-node");
    assert_eq!(labels["liqo.io/remote-cluster-id"], "milan");
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["type"], "virtual-kubelet");
    assert_eq!(
        labels["topology.liqo.io/region"], "north",
        "VirtualNode spec.labels"
    );
    let taints = node.spec.clone().unwrap().taints.unwrap();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "virtual-node.liqo.io/not-allowed"
                && t.value.as_deref() == Some("true")
                && t.effect == "NoExecute"),
        "{taints:?}"
    );
    let status = node.status.clone().unwrap();
    let capacity = status.capacity.clone().unwrap();
    assert_eq!(capacity["cpu"].0, "4");
    assert_eq!(capacity["memory"].0, "8Gi");
    assert_eq!(capacity["pods"].0, "110");
    assert_eq!(status.allocatable, status.capacity);
    assert_eq!(status.addresses.unwrap()[0].address, "192.0.2.10");

    // The Lease heartbeat exists and is renewed.
    let leases: Api<Lease> = Api::namespaced(rome.client(), "kube-node-lease");
    let first = eventually("the node Lease", WAIT, || async {
        leases
            .get_opt(NODE)
            .await
            .unwrap()
            .and_then(|l| l.spec?.renew_time)
    })
    .await;
    eventually("the node Lease to be renewed", WAIT, || async {
        leases
            .get_opt(NODE)
            .await
            .unwrap()
            .and_then(|l| l.spec?.renew_time)
            .filter(|t| *t != first)
    })
    .await;

    // Provider API server down: NotReady.
    milan.stop_component(Component::ApiServer);
    let reason = eventually("the virtual node to be NotReady", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .and_then(|n| ready(&n))
            .filter(|(s, _)| s == "False")
            .map(|(_, r)| r)
    })
    .await;
    assert_eq!(reason, "RemoteClusterUnreachable");

    // Back: Ready again.
    milan.start_component(Component::ApiServer).await.unwrap();
    eventually("the virtual node to be Ready again", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .filter(|n| ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;
    vk.check_running().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_virtual_node_is_a_clear_error() {
    let (rome, _milan) = setup("lof-vn2-rome", "lof-vn2-milan", 0).await;
    let mut vk = rome
        .daemon(
            "lof-virtual-kubelet-bad",
            env!("CARGO_BIN_EXE_liqo-virtual-kubelet"),
            [
                "--virtual-node-name",
                "nowhere",
                "--tenant-namespace",
                support::TENANT_NS,
                "--home-cluster-id",
                "rome",
                "--foreign-cluster-id",
                "milan",
            ],
        )
        .unwrap();
    let log = vk.log_path().to_owned();
    eventually("the virtual kubelet to exit", WAIT, || {
        let exited = vk.check_running().is_err();
        async move { exited.then_some(()) }
    })
    .await;
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("VirtualNode liqo-tenant-milan/nowhere does not exist"),
        "{text}"
    );
}
