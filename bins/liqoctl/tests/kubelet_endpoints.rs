//! A kubelet API endpoint per virtual node: rome consumes three providers (milan, naples,
//! turin) and milan consumes rome (a bidirectional peering), every virtual kubelet started by
//! its liqo-controller-manager on the same host. Each Node advertises its own kubelet port,
//! so `kubectl logs`, `kubectl exec` and `kubectl port-forward` reach the virtual kubelet of
//! the pod's node, for a pod on each of the four virtual nodes (one reached through the wrong
//! kubelet would fail with "not offloaded"). The providers' kwok answers port-forwards with an
//! echo, so what goes through the forwarded port comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use liqo_testenv::{Cluster, eventually};
use support::*;

/// Runs the real kubectl against `cluster`; (exit code, stdout, stderr).
async fn kubectl(cluster: &Cluster, args: &[&str]) -> (i32, String, String) {
    let binaries = liqo_testenv::Binaries::discover().unwrap();
    let child = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish"))
        .unwrap();
    let result = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("kubectl {args:?} -> {result:?}");
    result
}

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
async fn kubectl_logs_and_exec_reach_the_virtual_kubelet_of_each_node() {
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
        let (code, stdout, stderr) = kubectl(cluster, &["-n", ns, "logs", &pod]).await;
        assert_eq!(code, 0, "kubectl logs {ns}/{pod}: {stderr}");
        assert!(
            !stdout.is_empty(),
            "kubectl logs {ns}/{pod} printed nothing"
        );
        let (code, stdout, stderr) =
            kubectl(cluster, &["-n", ns, "exec", &pod, "--", "echo", &pod]).await;
        assert_eq!(code, 0, "kubectl exec {ns}/{pod}: {stderr}");
        assert_eq!(stdout.trim(), pod);
        port_forward_echoes(cluster, ns, &pod).await;
    }
}

/// `kubectl port-forward` to port 8080 of `pod`: a line sent through the forwarded local port
/// comes back (the provider's kwok echoes it).
async fn port_forward_echoes(cluster: &Cluster, ns: &str, pod: &str) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let binaries = liqo_testenv::Binaries::discover().unwrap();
    let mut child = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .args(["-n", ns, "port-forward", &format!("pod/{pod}"), ":8080"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // "Forwarding from 127.0.0.1:41234 -> 8080"
    let port: u16 = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            eprintln!("kubectl port-forward {ns}/{pod}: {line}");
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await;
        panic!("kubectl port-forward {ns}/{pod} ended: {stderr}");
    })
    .await
    .expect("kubectl port-forward listens");
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
    let _ = child.kill().await;
}
