//! The VirtualNode controller with the process launcher on two real control planes: a
//! VirtualNode gets a running `liqo-virtual-kubelet` (its Node becomes Ready, the VirtualNode
//! conditions say so), a killed kubelet is restarted, and deleting the VirtualNode stops the
//! kubelet and removes the Node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Node;
use kube::{Api, api::DeleteParams};
use liqo_core::{
    api::offloading::v1beta1::{VirtualNode, VirtualNodeConditionStatus, VirtualNodeConditionType},
    runtime::Shutdown,
};
use liqo_reflect::virtual_kubelet::{controller, launcher::ProcessLauncher};
use liqo_testenv::eventually;
use support::{NODE, TENANT_NS, WAIT, ready, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_virtual_kubelet_per_virtual_node() {
    let (rome, _milan) = setup("lof-vnc-rome", "lof-vnc-milan", 0).await;
    let launcher = Arc::new(
        ProcessLauncher::new(
            env!("CARGO_BIN_EXE_liqo-virtual-kubelet"),
            vec![
                "--kubeconfig".to_owned(),
                rome.kubeconfig_path().display().to_string(),
            ],
        )
        .log_dir(rome.dir().join("lof-virtual-kubelets")),
    );
    let shutdown = Shutdown::new();
    let running = tokio::spawn(controller::run(
        rome.client(),
        launcher.clone(),
        controller::Config {
            home_cluster_id: "rome".parse().unwrap(),
            extra_args: vec!["--node-ping-interval=1s".to_owned()],
            resync: Duration::from_secs(1),
            // Each kubelet with its own least-privilege ServiceAccount, as in production.
            own_identity: true,
        },
        shutdown.wait_owned(),
    ));
    let nodes: Api<Node> = Api::all(rome.client());
    let vns: Api<VirtualNode> = Api::namespaced(rome.client(), TENANT_NS);
    eventually("the virtual node to be Ready", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .filter(|n| ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;
    // The kubelet runs as its own ServiceAccount, not with the controller's credentials.
    let log_dir = rome.dir().join("lof-virtual-kubelets");
    let expected = format!("user=system:serviceaccount:{TENANT_NS}:virtual-kubelet-{NODE}");
    eventually(
        "the kubelet authenticated as its ServiceAccount",
        WAIT,
        || async {
            let logs: String = std::fs::read_dir(&log_dir)
                .ok()?
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect();
            logs.contains(&expected).then_some(())
        },
    )
    .await;
    let vn = eventually("the VirtualNode conditions", WAIT, || async {
        vns.get_opt(NODE).await.unwrap().filter(|vn| {
            let conditions = vn
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            conditions.iter().any(|c| {
                c.type_ == VirtualNodeConditionType::Node
                    && c.status == VirtualNodeConditionStatus::Running
            })
        })
    })
    .await;
    let conditions = vn.status.unwrap().conditions;
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == VirtualNodeConditionType::VirtualKubelet
                && c.status == VirtualNodeConditionStatus::Running)
    );
    assert!(
        vn.metadata
            .finalizers
            .unwrap()
            .contains(&"virtualnode-controller.liqo.io/finalizer".to_owned())
    );

    // A kubelet that dies is started again.
    let key = format!("{TENANT_NS}/{NODE}");
    let pid = launcher.pid(&key).await.unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    eventually("the virtual kubelet to be restarted", WAIT, || async {
        launcher.pid(&key).await.filter(|p| *p != pid)
    })
    .await;

    // Deleting the VirtualNode stops the kubelet and removes the Node.
    vns.delete(NODE, &DeleteParams::default()).await.unwrap();
    eventually("the VirtualNode and its Node to be gone", WAIT, || async {
        (vns.get_opt(NODE).await.unwrap().is_none() && nodes.get_opt(NODE).await.unwrap().is_none())
            .then_some(())
    })
    .await;
    assert_eq!(launcher.pid(&key).await, None);

    shutdown.trigger();
    running.await.unwrap().unwrap();
}
