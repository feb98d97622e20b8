//! What a provider reports is not trusted blindly: with the network fabric configured
//! (`--remote-pod-cidr`), a pod address the provider reports outside its pod CIDR (here kwok's
//! addresses, which the virtual kubelet is told are not milan's pod CIDR) never reaches the
//! local pod's status, so no Service of the consumer can be pointed at it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use support::{WAIT, offloaded_web};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_addresses_outside_the_providers_cidr_are_dropped() {
    // 192.0.2.0/24 (TEST-NET-1) is milan's pod CIDR as far as rome's virtual kubelet knows;
    // kwok gives the pod another address.
    let offloaded = offloaded_web(
        "lof-pi",
        &[
            "--remote-pod-cidr",
            "192.0.2.0/24",
            "--remote-pod-cidr-remap",
            "198.51.100.0/24",
        ],
    )
    .await;
    let remote: Api<Pod> = Api::namespaced(offloaded.milan.client(), "demo-rome");
    let remote_ip = liqo_testenv::eventually("the remote pod's address", WAIT, || async {
        remote.get("web").await.ok()?.status?.pod_ip
    })
    .await;
    assert!(!remote_ip.starts_with("192.0.2."), "{remote_ip}");
    let local: Api<Pod> = Api::namespaced(offloaded.rome.client(), "demo");
    let status = local.get("web").await.unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip, None, "a foreign address was copied");
    assert!(status.pod_ips.unwrap_or_default().is_empty());
}
