//! Pod offloading on two real control planes: a Deployment on the consumer (rome) pinned to
//! the virtual node runs on the provider (milan, kwok nodes) through a ShadowPod; its status
//! comes back with the pod IP remapped; a remote pod deleted behind our back is recreated by
//! the ShadowPod controller and counted as a restart; deleting the local pod removes the
//! remote one; a pod forced onto the virtual node from a namespace that is not offloaded stays
//! Pending with reason OffloadingBackOff.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use futures::TryStreamExt;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use liqo_core::{api::offloading::v1beta1::ShadowPod, runtime::Shutdown};
use liqo_ipam::remap::Mapping;
use liqo_reflect::shadowpod;
use liqo_testenv::eventually;
use serde_json::json;
use support::{NODE, WAIT, accept_mapping, setup, start_virtual_kubelet};

fn running_with_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    (status.phase.as_deref() == Some("Running")).then_some(())?;
    status.pod_ip.clone()
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_the_virtual_node_run_in_the_provider() {
    let (rome, milan) = setup("lof-po-rome", "lof-po-milan", 1).await;
    rome.create_namespace("demo").await.unwrap();
    rome.create_namespace("other").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;

    let shutdown = Shutdown::new();
    let controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let remap: ipnetwork::IpNetwork = format!("10.250.0.0/{}", milan.pod_cidr().prefix())
        .parse()
        .unwrap();
    let real: ipnetwork::IpNetwork = milan.pod_cidr().into();
    let mapping = Mapping::new(real, remap).unwrap();
    let mut vk = start_virtual_kubelet(
        &rome,
        &[
            "--remote-pod-cidr",
            &real.to_string(),
            "--remote-pod-cidr-remap",
            &remap.to_string(),
        ],
    );

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
    let remote_pods: Api<Pod> = Api::namespaced(milan.client(), "demo-rome");
    let shadows: Api<ShadowPod> = Api::namespaced(milan.client(), "demo-rome");
    let by_app = ListParams::default().labels("app=web");

    // Running on the consumer, with the provider's IP as remapped locally.
    let (local, local_ip) = eventually("the local pod to be Running", WAIT, || async {
        local_pods
            .list(&by_app)
            .await
            .unwrap()
            .items
            .into_iter()
            .find_map(|p| running_with_ip(&p).map(|ip| (p, ip)))
    })
    .await;
    let name = local.name_any();
    assert_eq!(
        local.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE)
    );
    assert_eq!(local.labels()["liqo.io/shadowPod"], "true");
    assert_eq!(
        local.status.as_ref().unwrap().host_ip.as_deref(),
        Some("192.0.2.10")
    );
    let remote = remote_pods.get(&name).await.unwrap();
    let remote_ip: IpAddr = running_with_ip(&remote).unwrap().parse().unwrap();
    assert!(real.contains(remote_ip), "{remote_ip} in {real}");
    assert_eq!(
        local_ip,
        mapping.to_remapped(remote_ip).unwrap().to_string()
    );
    assert_eq!(remote.labels()["liqo.io/managed-by"], "shadowpod");
    assert_eq!(remote.labels()["offloading.liqo.io/origin"], "rome");

    // The ShadowPod: mutated spec, phase mirrored.
    let shadow = eventually("the ShadowPod to show Running", WAIT, || async {
        shadows.get_opt(&name).await.unwrap().filter(|s| {
            s.status
                .as_ref()
                .is_some_and(|st| format!("{:?}", st.phase) == "Running")
        })
    })
    .await;
    let spec = shadow.spec.pod.unwrap();
    assert_eq!(spec.node_selector, None);
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.host_network, Some(false));
    assert!(
        spec.tolerations
            .unwrap_or_default()
            .iter()
            .all(|t| t.key.as_deref() != Some("virtual-node.liqo.io/not-allowed"))
    );

    // The remote pod is deleted behind our back: recreated, one more restart, new IP remapped.
    // kwok finishes a deletion by deleting the pod by name, without a UID precondition, and
    // under load that late delete can hit the replacement too: the test counts the remote
    // pods it sees, and the local restart count must match them (one restart per replacement).
    assert_eq!(restarts(&local_pods.get(&name).await.unwrap()), 0);
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let watch = tokio::spawn({
        let (seen, stream) = (
            seen.clone(),
            watcher(
                remote_pods.clone(),
                watcher::Config::default().fields(&format!("metadata.name={name}")),
            )
            .applied_objects(),
        );
        async move {
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(pod)) = stream.try_next().await {
                seen.lock().unwrap().insert(pod.uid().unwrap_or_default());
            }
        }
    });
    let old_uid = remote.uid().unwrap();
    eventually("the test's watch to see the remote pod", WAIT, || async {
        seen.lock().unwrap().contains(&old_uid).then_some(())
    })
    .await;
    remote_pods
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the remote pod to be recreated, Running, and counted locally with its IP remapped",
        WAIT,
        || async {
            let remote = remote_pods.get_opt(&name).await.unwrap()?;
            let ip: IpAddr = running_with_ip(&remote)?.parse().unwrap();
            let local = local_pods.get(&name).await.unwrap();
            let replacements = seen.lock().unwrap().len() - 1;
            (remote.uid().as_deref() != Some(old_uid.as_str())
                && usize::try_from(restarts(&local)) == Ok(replacements)
                && running_with_ip(&local) == Some(mapping.to_remapped(ip).unwrap().to_string()))
            .then_some(())
        },
    )
    .await;
    watch.abort();

    // A pod forced onto the virtual node from a namespace that is not offloaded.
    let others: Api<Pod> = Api::namespaced(rome.client(), "other");
    let forced: Pod = serde_json::from_value(json!({
        "metadata": {"name": "forced"},
        "spec": {
            "nodeName": NODE,
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "app", "image": "nginx"}],
        },
    }))
    .unwrap();
    others
        .create(&PostParams::default(), &forced)
        .await
        .unwrap();
    let status = eventually("the forced pod to be OffloadingBackOff", WAIT, || async {
        others
            .get("forced")
            .await
            .unwrap()
            .status
            .filter(|s| s.reason.as_deref() == Some("OffloadingBackOff"))
    })
    .await;
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(ShadowPodsIn::empty(&milan, "other").await);

    // Local deletion: the ShadowPod and the remote pod go, and the local pod is finalized.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    eventually("the remote pod and ShadowPod to be gone", WAIT, || async {
        (shadows.get_opt(&name).await.unwrap().is_none()
            && remote_pods.get_opt(&name).await.unwrap().is_none())
        .then_some(())
    })
    .await;
    eventually("the local pod to be gone", WAIT, || async {
        local_pods
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    // Deleting a terminating pod in a namespace that is not offloaded is finalized too.
    others
        .delete("forced", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the forced pod to be gone", WAIT, || async {
        others
            .get_opt("forced")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    vk.check_running().unwrap();
    shutdown.trigger();
    controller.await.unwrap().unwrap();
}

struct ShadowPodsIn;

impl ShadowPodsIn {
    /// Whether the provider has no ShadowPod at all in namespaces derived from `namespace`.
    async fn empty(milan: &liqo_testenv::Cluster, namespace: &str) -> bool {
        Api::<ShadowPod>::all(milan.client())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|s| !s.namespace().unwrap_or_default().starts_with(namespace))
    }
}
