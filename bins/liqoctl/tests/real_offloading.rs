//! A real pod offloaded: rome (kwok) peers to milan, whose only node is a real one (kubelet,
//! containerd, runc); a busybox HTTP server created in rome's offloaded namespace runs as a
//! real container on milan's node, its status (Running, the pod IP) comes back to rome, and
//! `kubectl logs`, `exec` and `port-forward` on rome reach the real container through the
//! virtual kubelet.
//!
//! Needs root (real nodes); skipped otherwise, except under CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use liqo_testenv::kubectl::{kubectl, port_forward};
use liqo_testenv::{Cluster, ClusterConfig, eventually};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pod_runs_on_the_provider_and_answers_through_the_consumer() {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "offloading to a real node needs root; CI is set, so it must not be skipped"
        );
        eprintln!("skipping: offloading to a real node needs root");
        return;
    }
    build_virtual_kubelet();
    let clusters = Cluster::start_all(vec![
        ClusterConfig::new("ro-rome").nodes(1),
        ClusterConfig::new("ro-milan").nodes(0).real_nodes(1),
    ])
    .await
    .unwrap();
    for c in &clusters {
        c.install_crds(liqo_core::api::crds()).await.unwrap();
    }
    let (rome, milan) = (&clusters[0], &clusters[1]);
    let _m_rome = manager(rome, "rome", &[]);
    let _m_milan = manager(milan, "milan", &[]);
    ready(rome).await;
    ready(milan).await;
    // A real node offers what the machine has (2 CPUs here): ask for less than the default.
    assert!(
        peer(
            rome,
            milan,
            &["--cpu", "1", "--memory", "1Gi", "--pods", "20"]
        )
        .status
        .success()
    );
    virtual_node_ready(rome, "milan").await;
    rome.create_namespace("real").await.unwrap();
    liqoctl_ok(
        rome,
        &[
            "offload",
            "namespace",
            "real",
            "--pod-offloading-strategy",
            "Remote",
        ],
    );

    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{
            "name": "httpd",
            "image": format!("localhost/liqo-rs/busybox:{}", liqo_testenv::image::TAG),
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo serving from a real container; exec httpd -f -v -p 8080 -h /www"],
        }]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(rome.client(), "real");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = eventually("the offloaded pod Running on rome", WAIT, || async {
        let p = pods.get("web").await.ok()?;
        let status = p.status?;
        (status.phase.as_deref() == Some("Running")).then_some(status.pod_ip)
    })
    .await;
    assert!(running.is_some(), "the pod IP comes back");
    // The twin is a real container on milan's real node.
    let remote = Api::<Pod>::all(milan.client())
        .list(&kube::api::ListParams::default().fields("metadata.name=web"))
        .await
        .unwrap();
    let twin = &remote.items[0];
    assert_eq!(
        twin.spec.as_ref().unwrap().node_name.as_deref(),
        Some("ro-milan-real-0")
    );

    let logs = kubectl(rome, &["-n", "real", "logs", "web"]).await.unwrap();
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(
        logs.stdout.contains("serving from a real container"),
        "{logs:?}"
    );
    let exec = kubectl(
        rome,
        &["-n", "real", "exec", "web", "--", "cat", "/www/index.html"],
    )
    .await
    .unwrap();
    assert_eq!(exec.code, 0, "{}", exec.stderr);
    assert_eq!(exec.stdout.trim(), "hello from liqo-rs");

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let forward = port_forward(rome, "real", "pod/web", 8080).await.unwrap();
    let port = forward.port;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, conn.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.contains("hello from liqo-rs"), "{answer}");
}
