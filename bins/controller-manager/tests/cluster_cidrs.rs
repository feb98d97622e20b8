//! liqo-controller-manager without `--pod-cidr`/`--service-cidr`, on a real control plane:
//! it reads them where the cluster records them (kube-system/kubeadm-config, written by
//! liqo-testenv as kubeadm does) and reserves them in the IPAM; where nothing records them,
//! it refuses to start the networking module with an error naming the flag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use liqo_core::api::ipam::v1alpha1::Network;
use liqo_testenv::{Cluster, ClusterConfig, eventually};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_and_service_cidrs_are_detected_or_asked_for() {
    let cluster = Cluster::start(ClusterConfig::new("cidrs").nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    let exe = env!("CARGO_BIN_EXE_liqo-controller-manager");
    let manager = cluster
        .daemon("liqo-controller-manager", exe, ["--cluster-id", "cidrs"])
        .unwrap();
    let networks: Api<Network> = Api::namespaced(cluster.client(), "liqo");
    let pod = eventually("the pod-cidr Network", WAIT, || async {
        networks.get_opt("pod-cidr").await.ok()?
    })
    .await;
    assert_eq!(
        pod.spec.cidr.0,
        cluster.pod_cidr().to_string(),
        "the detected pod CIDR"
    );
    drop(manager);

    // Nothing records the pod CIDR: the manager stops, naming the flag.
    Api::<ConfigMap>::namespaced(cluster.client(), "kube-system")
        .delete("kubeadm-config", &DeleteParams::default())
        .await
        .unwrap();
    let out = tokio::process::Command::new(exe)
        .args(["--kubeconfig"])
        .arg(cluster.kubeconfig_path())
        .args(["--cluster-id", "cidrs"])
        .env_remove("KUBECONFIG")
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("the manager exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--pod-cidr") && stderr.contains("--enable-networking=false"),
        "{stderr}"
    );
}
