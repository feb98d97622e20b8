//! A kubelet API endpoint per virtual node: rome consumes three providers (milan, naples,
//! turin) and milan consumes rome (a bidirectional peering), every virtual kubelet started by
//! its liqo-controller-manager on the same host. Each Node advertises its own kubelet port,
//! so `kubectl logs`, `kubectl exec` and `kubectl port-forward` reach the virtual kubelet of
//! the pod's node, for a pod on each of the four virtual nodes (one reached through the wrong
//! kubelet would fail with "not offloaded"). The providers' kwok answers port-forwards with an
//! echo, so what goes through the forwarded port comes back. The kubelet's `/stats/summary`
//! and `/metrics/resource` (what metrics-server scrapes for `kubectl top`) report the twin's
//! usage from milan's `metrics.k8s.io`; naples has no metrics pipeline, and says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use liqo_testenv::kubectl::{kubectl, port_forward};
use liqo_testenv::{Cluster, eventually};
use support::*;

/// A pod bound to virtual node `node` in `ns` of `cluster`, Running.
async fn pod_on(cluster: &Cluster, ns: &str, node: &str) -> String {
    let name = format!("on-{node}");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually(&format!("pod {name} Running"), WAIT, || async {
        let p = pods.get(&name).await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_port_forward_and_stats_reach_the_virtual_kubelet_of_each_node() {
    build_virtual_kubelet();
    let clusters = clusters(&["ke-rome", "ke-milan", "ke-naples", "ke-turin"]).await;
    let ids = ["rome", "milan", "naples", "turin"];
    let _managers: Vec<_> = clusters
        .iter()
        .zip(ids)
        .map(|(c, id)| manager(c, id, &[]))
        .collect();
    for c in &clusters {
        ready(c).await;
    }
    let rome = &clusters[0];
    let milan = &clusters[1];
    let out = peer(rome, milan, &["--bidirectional"]);
    assert!(out.status.success());
    for provider in &clusters[2..] {
        assert!(peer(rome, provider, &[]).status.success());
    }

    // Every virtual node Ready, each with its own kubelet port.
    let mut endpoints = BTreeSet::new();
    for (consumer, node) in [
        (rome, "milan"),
        (rome, "naples"),
        (rome, "turin"),
        (milan, "rome"),
    ] {
        let node: Node = virtual_node_ready(consumer, node).await;
        let status = node.status.unwrap();
        let port = status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port;
        let ip = status.addresses.unwrap()[0].address.clone();
        assert!(
            endpoints.insert((ip.clone(), port)),
            "two virtual kubelets advertise {ip}:{port}"
        );
    }

    rome.create_namespace("demo").await.unwrap();
    liqoctl_ok(rome, &["offload", "namespace", "demo"]);
    milan.create_namespace("back").await.unwrap();
    liqoctl_ok(milan, &["offload", "namespace", "back"]);
    let mut pods = Vec::new();
    for node in ["milan", "naples", "turin"] {
        pods.push((rome, "demo", pod_on(rome, "demo", node).await));
    }
    pods.push((milan, "back", pod_on(milan, "back", "rome").await));

    for (cluster, ns, pod) in pods {
        let logs = kubectl(cluster, &["-n", ns, "logs", &pod]).await.unwrap();
        assert_eq!(logs.code, 0, "kubectl logs {ns}/{pod}: {}", logs.stderr);
        assert!(
            !logs.stdout.is_empty(),
            "kubectl logs {ns}/{pod} printed nothing"
        );
        let exec = kubectl(cluster, &["-n", ns, "exec", &pod, "--", "echo", &pod])
            .await
            .unwrap();
        assert_eq!(exec.code, 0, "kubectl exec {ns}/{pod}: {}", exec.stderr);
        assert_eq!(exec.stdout.trim(), pod);
        port_forward_echoes(cluster, ns, &pod).await;
    }

    // milan's metrics pipeline, played by a CRD serving metrics.k8s.io PodMetrics.
    install_metrics_api(milan).await;
    let twin_ns = Api::<liqo_core::api::offloading::v1beta1::NamespaceOffloading>::namespaced(
        rome.client(),
        "demo",
    )
    .get("offloading")
    .await
    .unwrap()
    .status
    .unwrap()
    .remote_namespace_name
    .unwrap();
    let metrics = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    );
    let sample: kube::core::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": "on-milan", "namespace": twin_ns},
        "timestamp": "2026-01-01T00:00:00Z",
        "window": "30s",
        "containers": [{"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}}],
    }))
    .unwrap();
    Api::<kube::core::DynamicObject>::namespaced_with(milan.client(), &twin_ns, &metrics)
        .create(&PostParams::default(), &sample)
        .await
        .unwrap();
    // Scraped as metrics-server does: on the Node's advertised endpoint, with a client
    // certificate the kubelet authorizes (here the API server's).
    let (code, stdout) = scrape(rome, "milan", "/stats/summary").await;
    assert_eq!(code, 200, "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let pod = &summary["pods"][0];
    assert_eq!(pod["podRef"]["name"], "on-milan");
    assert_eq!(pod["podRef"]["namespace"], "demo");
    assert_eq!(pod["memory"]["workingSetBytes"], 64 * 1024 * 1024);
    assert_eq!(pod["cpu"]["usageNanoCores"], 250_000_000);
    let (code, stdout) = scrape(rome, "milan", "/metrics/resource").await;
    assert_eq!(code, 200, "{stdout}");
    assert!(
        stdout.contains(
            "container_memory_working_set_bytes{container=\"app\",namespace=\"demo\",pod=\"on-milan\"} 67108864"
        ),
        "{stdout}"
    );
    let (code, stdout) = scrape(rome, "naples", "/stats/summary").await;
    assert_eq!(code, 503, "{stdout}");
    assert!(stdout.contains("no metrics.k8s.io"), "{stdout}");
}

/// GET `path` on the kubelet endpoint Node `node` advertises, with the API server's kubelet
/// client certificate; (HTTP status, body).
async fn scrape(cluster: &Cluster, node: &str, path: &str) -> (u16, String) {
    let node = Api::<Node>::all(cluster.client()).get(node).await.unwrap();
    let status = node.status.unwrap();
    let port = status
        .daemon_endpoints
        .unwrap()
        .kubelet_endpoint
        .unwrap()
        .port;
    let ip = status.addresses.unwrap()[0].address.clone();
    let dir = cluster.dir().to_owned();
    let url = format!("https://{ip}:{port}{path}");
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg("--cert")
        .arg(dir.join("apiserver-kubelet-client.crt"))
        .arg("--key")
        .arg(dir.join("apiserver-kubelet-client.key"))
        .arg(&url)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("curl {url} -> {text}");
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

/// A CustomResourceDefinition serving `metrics.k8s.io/v1beta1` PodMetrics (`pods`), as
/// metrics-server's aggregated API would: a metrics pipeline without metrics-server.
async fn install_metrics_api(cluster: &Cluster) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "pods.metrics.k8s.io",
            "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/1111"},
        },
        "spec": {
            "group": "metrics.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
            "versions": [{
                "name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    }))
    .unwrap();
    cluster.install_crds([crd]).await.unwrap();
}

/// `kubectl port-forward` to port 8080 of `pod`: a line sent through the forwarded local port
/// comes back (the provider's kwok echoes it).
async fn port_forward_echoes(cluster: &Cluster, ns: &str, pod: &str) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let forward = port_forward(cluster, ns, &format!("pod/{pod}"), 8080)
        .await
        .unwrap();
    let port = forward.port;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let line = format!("hello {pod}\n");
    conn.write_all(line.as_bytes()).await.unwrap();
    let mut back = vec![0_u8; line.len()];
    tokio::time::timeout(WAIT, conn.read_exact(&mut back))
        .await
        .expect("the echo comes back")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&back), line);
}
