//! A provider outage with pods offloaded: while milan's API server is down for a minute the
//! virtual node goes NotReady and the offloaded pod keeps its place; once it is back the node is Ready
//! again, reflection resumes (a remote pod deleted afterwards is recreated and counted, a new
//! replica is offloaded) and nothing is duplicated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use liqo_core::{api::offloading::v1beta1::ShadowPod, runtime::Shutdown};
use liqo_reflect::shadowpod;
use liqo_testenv::{Component, eventually};
use serde_json::json;
use support::{NODE, WAIT, accept_mapping, ready, setup, start_virtual_kubelet};

/// How long the provider's API server stays down (the figure).
const OUTAGE: std::time::Duration = std::time::Duration::from_secs(60);

fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some()
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloading_survives_a_provider_outage() {
    let (rome, mut milan) = setup("lof-out-rome", "lof-out-milan", 1).await;
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;
    let shutdown = Shutdown::new();
    let controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let mut vk = start_virtual_kubelet(&rome, &[]);

    let deployments: Api<Deployment> = Api::namespaced(rome.client(), "demo");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "nodeSelector": {"liqo.io/type": "virtual-node"},
                    "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
                    "containers": [{"name": "web", "image": "nginx"}],
                },
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let local_pods: Api<Pod> = Api::namespaced(rome.client(), "demo");
    let by_app = ListParams::default().labels("app=web");
    let first = eventually("the local pod to be Running", WAIT, || async {
        local_pods
            .list(&by_app)
            .await
            .unwrap()
            .items
            .into_iter()
            .find(running)
    })
    .await;
    let name = first.name_any();

    let remote_pods: Api<Pod> = Api::namespaced(milan.client(), "demo-rome");
    let before = remote_pods.get(&name).await.unwrap();

    // Outage: milan's API server is down for a full minute.
    let nodes: Api<Node> = Api::all(rome.client());
    milan.stop_component(Component::ApiServer);
    let outage = std::time::Instant::now();
    eventually("the virtual node to be NotReady", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .filter(|n| ready(n).is_some_and(|(s, _)| s == "False"))
    })
    .await;
    // The offloaded pod is still the same one, still bound to the virtual node, all minute.
    while outage.elapsed() < OUTAGE {
        let during = local_pods.get(&name).await.unwrap();
        assert_eq!(during.uid(), first.uid());
        assert!(during.metadata.deletion_timestamp.is_none());
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    eprintln!("provider API server down for {:.1?}", outage.elapsed());
    milan.start_component(Component::ApiServer).await.unwrap();
    eventually("the virtual node to be Ready again", WAIT, || async {
        nodes
            .get_opt(NODE)
            .await
            .unwrap()
            .filter(|n| ready(n).is_some_and(|(s, _)| s == "True"))
    })
    .await;
    // The remote pod kept running (the same one), and the local status matches it again
    // (the node lifecycle controller marks pods of a NotReady node not Ready meanwhile).
    let after = remote_pods.get(&name).await.unwrap();
    assert_eq!(after.uid(), before.uid(), "the remote pod was not replaced");
    // The local status mirrors the remote pod's again: same Ready condition, no longer the
    // RemoteUnavailable the outage set. (Whether the remote pod itself is Ready again is
    // milan's business: its node lifecycle controller may mark it not Ready after the restart
    // if kwok's heartbeats come back late, and kwok does not mark it Ready again.) Up to two
    // minutes: the provider watches may still wait out the backoff they reached (up to 30 s).
    let ready_of = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready").cloned())
    };
    eventually(
        "the local status to mirror the remote pod again",
        2 * WAIT,
        || async {
            let local = local_pods.get(&name).await.unwrap();
            let remote = remote_pods.get(&name).await.unwrap();
            let (l, r) = (ready_of(&local)?, ready_of(&remote)?);
            let mirrored = l.status == r.status && l.reason.as_deref() != Some("RemoteUnavailable");
            (mirrored && running(&local) && local.uid() == first.uid()).then_some(())
        },
    )
    .await;

    // The provider's own scheduler and kwok (client-go) reconnect with up to a minute of
    // backoff after such an outage: wait until a pod created directly on milan runs, so what
    // follows measures reflection, not milan's recovery.
    let canaries: Api<Pod> = Api::namespaced(milan.client(), "default");
    let canary: Pod = serde_json::from_value(json!({
        "metadata": {"name": "canary"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }))
    .unwrap();
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    eventually("milan to run a pod of its own again", WAIT * 3, || async {
        canaries.get_opt("canary").await.unwrap().filter(running)
    })
    .await;

    // Reflection resumed: the remote pod deleted now is recreated and counted.
    let old = after;
    remote_pods
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the restart to show locally", WAIT, || async {
        local_pods
            .get_opt(&name)
            .await
            .unwrap()
            .filter(|p| restarts(p) >= 1 && running(p))
    })
    .await;
    let recreated = remote_pods.get(&name).await.unwrap();
    assert_ne!(recreated.uid(), old.uid());

    // A new replica is offloaded too; one ShadowPod per local pod, no more.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    eventually("two local pods Running", WAIT, || async {
        let pods = local_pods.list(&by_app).await.unwrap().items;
        (pods.len() == 2 && pods.iter().all(running)).then_some(())
    })
    .await;
    let shadows = Api::<ShadowPod>::namespaced(milan.client(), "demo-rome")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(shadows.items.len(), 2);
    let remote = remote_pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(remote.items.len(), 2);

    vk.check_running().unwrap();
    // A figure, not an assertion.
    eprintln!(
        "virtual kubelet: peak memory {:?} bytes, cpu {:?}",
        vk.peak_memory_bytes(),
        vk.cpu_time()
    );
    shutdown.trigger();
    controller.await.unwrap().unwrap();
}
