//! The quick start at control-plane level, with every component a real process: rome peers to
//! milan, rome's liqo-controller-manager starts the virtual kubelet of milan's VirtualNode,
//! `liqoctl offload namespace` extends liqo-demo (Remote strategy), a plain pod is mutated by
//! the webhook, scheduled on the virtual node and runs on milan's kwok node; `liqoctl
//! unoffload namespace` removes the twin namespace. The offloaded replicas of a Deployment
//! come back to local nodes when the cluster selector no longer selects the provider and when
//! the namespace is unoffloaded, and no dead endpoint stays in their Service. A failed
//! offload (EnforceSameName clash) leaves the namespace as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use liqo_core::api::offloading::v1beta1::NamespaceOffloading;
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

    // A Deployment behind a Service, all offloaded; then in a second namespace the cluster
    // selector stops selecting milan: the replicas come back to local nodes.
    deploy_web(rome, "liqo-demo").await;
    let offloaded = replicas_where(rome, "liqo-demo", "on milan", |node| node == "milan").await;
    endpoints_are(rome, "liqo-demo", &offloaded).await;
    rome.create_namespace("narrow").await.unwrap();
    liqoctl_ok(
        rome,
        &[
            "offload",
            "namespace",
            "narrow",
            "--pod-offloading-strategy",
            "Remote",
            "--selector",
            "liqo.io/remote-cluster-id=milan",
        ],
    );
    deploy_web(rome, "narrow").await;
    replicas_where(rome, "narrow", "on milan", |node| node == "milan").await;
    let narrowed = serde_json::json!({"spec": {"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["naples"]}]},
    ]}}});
    Api::<NamespaceOffloading>::namespaced(rome.client(), "narrow")
        .patch(
            "offloading",
            &PatchParams::default(),
            &Patch::Merge(&narrowed),
        )
        .await
        .unwrap();
    let local = replicas_where(rome, "narrow", "back on local nodes", |node| {
        node != "milan"
    })
    .await;
    endpoints_are(rome, "narrow", &local).await;

    // A failed offload (the name is taken on milan by a namespace that is not Liqo's) is rolled
    // back: no NamespaceOffloading, no scheduling label, pods are not sent to virtual nodes.
    milan.create_namespace("taken").await.unwrap();
    rome.create_namespace("taken").await.unwrap();
    let out = liqoctl(
        rome,
        &[
            "offload",
            "namespace",
            "taken",
            "--namespace-mapping-strategy",
            "EnforceSameName",
            "--timeout",
            "60s",
        ],
    );
    assert!(!out.status.success());
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        printed.contains("rolled back") && printed.contains("milan"),
        "{printed}"
    );
    eventually("taken as it was before the offload", WAIT, || async {
        let nso = Api::<NamespaceOffloading>::namespaced(rome.client(), "taken")
            .get_opt("offloading")
            .await
            .ok()?;
        let ns = Api::<Namespace>::all(rome.client())
            .get("taken")
            .await
            .ok()?;
        let labelled = ns
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("liqo.io/scheduling-enabled");
        (nso.is_none() && !labelled).then_some(())
    })
    .await;
    let plain = Api::<Pod>::namespaced(rome.client(), "taken")
        .create(&PostParams::default(), &pod.clone())
        .await
        .unwrap();
    assert!(
        plain
            .spec
            .unwrap()
            .tolerations
            .unwrap_or_default()
            .iter()
            .all(|t| t.key.as_deref() != Some("virtual-node.liqo.io/not-allowed"))
    );

    // Unpeering a cluster that is not a peer says so.
    let out = liqoctl(
        rome,
        &["unpeer", "--force", "--remote-cluster-id", "naples"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("naples is not a peer"), "{err}");

    // Unoffloading removes the twin namespace, and the replicas come back to local nodes.
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
    let local = replicas_where(rome, "liqo-demo", "back on local nodes", |node| {
        node != "milan"
    })
    .await;
    endpoints_are(rome, "liqo-demo", &local).await;
    assert_no_debug_dumps(rome).await;
    assert_no_debug_dumps(milan).await;
}

/// A Deployment `web` (2 replicas) and its Service in `ns`.
async fn deploy_web(cluster: &liqo_testenv::Cluster, ns: &str) {
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(cluster.client(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(cluster.client(), ns)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
}

/// Waits until exactly the 2 replicas of `web` in `ns` exist, all Running (not terminating) on
/// nodes `node_ok` accepts; returns their IPs.
async fn replicas_where(
    cluster: &liqo_testenv::Cluster,
    ns: &str,
    what: &str,
    node_ok: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    eventually(
        &format!("the replicas of {ns}/web {what}"),
        WAIT,
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            let ips: BTreeSet<String> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_some_and(&node_ok)
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
                .collect();
            (list.items.len() == 2 && ips.len() == 2).then_some(ips)
        },
    )
    .await
}

/// Waits until the ready endpoints of Service `web` in `ns` are exactly `ips`.
async fn endpoints_are(cluster: &liqo_testenv::Cluster, ns: &str, ips: &BTreeSet<String>) {
    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client(), ns);
    eventually(
        &format!("the endpoints of {ns}/web to be {ips:?}"),
        WAIT,
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?;
            let got: BTreeSet<String> = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter().flatten())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            (&got == ips).then_some(())
        },
    )
    .await;
}
