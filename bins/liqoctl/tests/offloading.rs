//! The quick start at control-plane level, with every component a real process: rome peers to
//! milan, rome's liqo-controller-manager starts the virtual kubelet of milan's VirtualNode,
//! `liqoctl offload namespace` extends liqo-demo (Remote strategy), a plain pod is mutated by
//! the webhook, scheduled on the virtual node and runs on milan's kwok node; `liqoctl
//! unoffload namespace` removes the twin namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::PostParams;
use liqo_testenv::eventually;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_offloaded_with_liqoctl_runs_its_pods_on_the_provider() {
    build_virtual_kubelet();
    let clusters = clusters(&["of-rome", "of-milan"]).await;
    let (rome, milan) = (&clusters[0], &clusters[1]);
    let _m_rome = manager(rome, "rome", &[]);
    let _m_milan = manager(milan, "milan", &[]);
    ready(rome).await;
    ready(milan).await;
    let out = peer(rome, milan, &[]);
    assert!(out.status.success());

    // The controller-manager started the virtual kubelet: the virtual node is Ready.
    let nodes: Api<Node> = Api::all(rome.client());
    eventually("virtual node milan Ready on rome", WAIT, || async {
        let node = nodes.get_opt("milan").await.ok()??;
        let ready = node
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;

    rome.create_namespace("liqo-demo").await.unwrap();
    let printed = liqoctl_ok(
        rome,
        &[
            "offload",
            "namespace",
            "liqo-demo",
            "--pod-offloading-strategy",
            "Remote",
            "--namespace-mapping-strategy",
            "EnforceSameName",
            "--output",
            "yaml",
        ],
    );
    assert!(printed.contains("kind: NamespaceOffloading"), "{printed}");
    let out = liqoctl_ok(
        rome,
        &[
            "offload",
            "namespace",
            "liqo-demo",
            "--pod-offloading-strategy",
            "Remote",
            "--namespace-mapping-strategy",
            "EnforceSameName",
        ],
    );
    assert!(out.contains("✔ remote namespaces ready"), "{out}");
    let remote_ns: Api<Namespace> = Api::all(milan.client());
    assert!(remote_ns.get_opt("liqo-demo").await.unwrap().is_some());

    // A plain pod: the webhook adds the toleration and affinity of the Remote strategy.
    let pods: Api<Pod> = Api::namespaced(rome.client(), "liqo-demo");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = eventually("the pod Running on the virtual node", WAIT, || async {
        let p = pods.get("nginx").await.ok()?;
        let on_node = p.spec.as_ref()?.node_name.as_deref() == Some("milan");
        (on_node && p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    assert!(running.status.unwrap().pod_ip.is_some());
    let remote: Api<Pod> = Api::namespaced(milan.client(), "liqo-demo");
    assert!(remote.get_opt("nginx").await.unwrap().is_some());

    // Unoffloading removes the twin namespace.
    let out = liqoctl(rome, &["unoffload", "namespace", "liqo-demo"]);
    if !out.status.success() {
        let ns = remote_ns.get_opt("liqo-demo").await.unwrap();
        let left: Vec<String> = remote
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| format!("{:?} {:?}", p.metadata.name, p.metadata.finalizers))
            .collect();
        panic!(
            "unoffload failed; remote namespace: {:?}; pods left: {left:?}",
            ns.map(|n| n.status)
        );
    }
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains("✔ remote namespaces removed"), "{out}");
    eventually("the twin namespace gone", WAIT, || async {
        match remote_ns.get_opt("liqo-demo").await.ok()? {
            None => Some(()),
            Some(ns) => ns.metadata.deletion_timestamp.map(|_| ()),
        }
    })
    .await;
}
