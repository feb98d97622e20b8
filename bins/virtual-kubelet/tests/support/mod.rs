//! Shared setup of the virtual-kubelet tests: a consumer (rome) with the objects peering
//! produces for a provider (milan), and the virtual kubelet binary running against them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // not every test uses all

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use liqo_core::api::offloading::v1beta1::{NamespaceMap, VirtualNode};
use liqo_testenv::{Cluster, ClusterConfig, Daemon};
use serde_json::json;

pub(crate) const WAIT: Duration = Duration::from_secs(60);
pub(crate) const TENANT_NS: &str = "liqo-tenant-milan";
pub(crate) const NODE: &str = "milan";

/// Starts the consumer (no kwok nodes) and the provider (`provider_nodes` kwok nodes), with
/// the Liqo CRDs installed in both, and on the consumer the tenant namespace, the provider's
/// kubeconfig Secret and the VirtualNode `milan`.
pub(crate) async fn setup(rome: &str, milan: &str, provider_nodes: usize) -> (Cluster, Cluster) {
    setup_with(
        ClusterConfig::new(rome).nodes(0),
        ClusterConfig::new(milan).nodes(provider_nodes),
        "110",
    )
    .await
}

/// [`setup`] with explicit cluster configurations and the VirtualNode's pod quota.
pub(crate) async fn setup_with(
    rome: ClusterConfig,
    milan: ClusterConfig,
    pods: &str,
) -> (Cluster, Cluster) {
    let mut clusters = Cluster::start_all(vec![rome, milan]).await.unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    rome.install_crds(liqo_core::api::crds()).await.unwrap();
    milan.install_crds(liqo_core::api::crds()).await.unwrap();
    rome.create_namespace(TENANT_NS).await.unwrap();
    milan.create_namespace("liqo-tenant-rome").await.unwrap();
    let kubeconfig = std::fs::read_to_string(milan.kubeconfig_path()).unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "milan-kubeconfig",
            "annotations": {"liqo.io/remote-tenant-namespace": "liqo-tenant-rome"},
        },
        "stringData": {"kubeconfig": kubeconfig},
    }))
    .unwrap();
    Api::<Secret>::namespaced(rome.client(), TENANT_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let vn: VirtualNode = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "VirtualNode",
        "metadata": {"name": NODE, "namespace": TENANT_NS},
        "spec": {
            "clusterID": "milan",
            "kubeconfigSecretRef": {"name": "milan-kubeconfig"},
            "resourceQuota": {"hard": {"cpu": "4", "memory": "8Gi", "pods": pods}},
            "labels": {"topology.liqo.io/region": "north"},
        },
    }))
    .unwrap();
    Api::<VirtualNode>::namespaced(rome.client(), TENANT_NS)
        .create(&PostParams::default(), &vn)
        .await
        .unwrap();
    (rome, milan)
}

/// Runs the virtual kubelet of `milan` against rome, with `extra` flags.
pub(crate) fn start_virtual_kubelet(rome: &Cluster, extra: &[&str]) -> Daemon {
    start_virtual_kubelet_program(
        rome,
        std::path::Path::new(env!("CARGO_BIN_EXE_liqo-virtual-kubelet")),
        extra,
    )
}

/// As [`start_virtual_kubelet`], with another virtual-kubelet binary (one built from the
/// library, say).
pub(crate) fn start_virtual_kubelet_program(
    rome: &Cluster,
    program: &std::path::Path,
    extra: &[&str],
) -> Daemon {
    let mut args: Vec<String> = [
        "--virtual-node-name",
        NODE,
        "--tenant-namespace",
        TENANT_NS,
        "--home-cluster-id",
        "rome",
        "--foreign-cluster-id",
        "milan",
        "--node-ip",
        "192.0.2.10",
        "--node-ping-interval",
        "1s",
        "--node-health-failure-threshold",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    rome.daemon("lof-virtual-kubelet", program, args).unwrap()
}

/// The status and reason of the Node's Ready condition.
pub(crate) fn ready(node: &Node) -> Option<(String, String)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// Marks `local -> remote` Accepted in the NamespaceMap of milan, as the provider's
/// NamespaceMap controller would (through the replicator).
pub(crate) async fn accept_mapping(rome: &Client, local: &str, remote: &str) {
    let maps: Api<NamespaceMap> = Api::namespaced(rome.clone(), TENANT_NS);
    let map = json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceMap",
        "metadata": {"name": "milan", "namespace": TENANT_NS},
        "spec": {"desiredMapping": {local: remote}},
    });
    maps.patch(
        "milan",
        &PatchParams::apply("lof-test"),
        &Patch::Apply(&map),
    )
    .await
    .unwrap();
    let status = json!({"status": {"currentMapping": {local: {"remoteNamespace": remote, "phase": "Accepted"}}}});
    maps.patch_status("milan", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Two clusters, rome's namespace demo offloaded to milan's demo-rome, a virtual kubelet
/// serving its kubelet API on a free port of 127.0.0.1, and pod `web` Running through it.
pub(crate) struct OffloadedWeb {
    pub(crate) rome: liqo_testenv::Cluster,
    pub(crate) milan: liqo_testenv::Cluster,
    pub(crate) port: String,
    _vk: liqo_testenv::Daemon,
    _shutdown: liqo_core::runtime::Shutdown,
}

pub(crate) async fn offloaded_web(prefix: &str, extra_args: &[&str]) -> OffloadedWeb {
    let (rome, milan) = setup(&format!("{prefix}-rome"), &format!("{prefix}-milan"), 1).await;
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;
    let shutdown = liqo_core::runtime::Shutdown::new();
    tokio::spawn(liqo_reflect::shadowpod::run(
        milan.client(),
        liqo_reflect::shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let vk = rome
        .daemon(
            &format!("{prefix}-virtual-kubelet"),
            env!("CARGO_BIN_EXE_liqo-virtual-kubelet"),
            [
                "--virtual-node-name",
                NODE,
                "--tenant-namespace",
                TENANT_NS,
                "--home-cluster-id",
                "rome",
                "--foreign-cluster-id",
                "milan",
                "--node-ip",
                "127.0.0.1",
                "--listen-port",
                &port,
            ]
            .into_iter()
            .chain(extra_args.iter().copied()),
        )
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(rome.client(), "demo");
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "nodeSelector": {"liqo.io/type": "virtual-node"},
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "web", "image": "nginx"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    liqo_testenv::eventually("the offloaded pod to be Running", WAIT, || async {
        let p = pods.get("web").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    OffloadedWeb {
        rome,
        milan,
        port,
        _vk: vk,
        _shutdown: shutdown,
    }
}
