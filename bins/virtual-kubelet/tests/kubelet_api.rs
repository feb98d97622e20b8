//! `kubectl logs` on an offloaded pod: the home API server calls the virtual kubelet's HTTPS
//! kubelet API (the Node's InternalIP and kubelet port), which asks the provider's API server
//! for the logs of the twin pod. kwok's simulated containers have no kubelet behind them, so
//! the provider cannot produce log lines: the test checks that the request travels the whole
//! path (home API server -> virtual kubelet -> provider API server) and that the provider's
//! answer comes back to the user (kwok's kubelet server answers "no logs found": it serves logs
//! only for containers given a log file through its ClusterLogs resources, which the test
//! clusters do not configure).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{LogParams, PostParams};
use liqo_core::runtime::Shutdown;
use liqo_reflect::shadowpod;
use liqo_testenv::eventually;
use serde_json::json;
use support::{NODE, TENANT_NS, WAIT, accept_mapping, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_offloaded_pods_go_through_the_virtual_kubelet() {
    let (rome, milan) = setup("lof-kl-rome", "lof-kl-milan", 1).await;
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;
    let shutdown = Shutdown::new();
    let _controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let _vk = rome
        .daemon(
            "lof-kl-virtual-kubelet",
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
            ],
        )
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(rome.client(), "demo");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "nodeSelector": {"liqo.io/type": "virtual-node"},
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "web", "image": "nginx"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the offloaded pod to be Running", WAIT, || async {
        let p = pods.get("web").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;

    // What kubectl logs does: pods/log on the home API server.
    let params = LogParams {
        container: Some("web".into()),
        tail_lines: Some(10),
        ..LogParams::default()
    };
    let answer = pods.logs("web", &params).await;
    eprintln!("kubectl logs demo/web -> {answer:?}");
    match answer {
        // A provider whose containers produce logs: they come back as they are.
        Ok(_) => {}
        // kwok: the provider's API server has no kubelet to ask; its refusal, relayed by the
        // virtual kubelet, proves the request went all the way.
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("the provider refused the logs of demo-rome/web"),
                "the error does not come from the virtual kubelet: {message}"
            );
        }
    }

    // A pod of a namespace that is not offloaded here is not found by the kubelet API.
    let missing = pods.logs("absent", &params).await.unwrap_err().to_string();
    assert!(
        missing.contains("not found") || missing.contains("NotFound"),
        "{missing}"
    );
}
