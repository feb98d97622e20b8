//! Namespace extension on two real control planes: rome (consumer) runs the NamespaceOffloading
//! controller, milan (provider) the NamespaceMap controller; this test plays the CRD
//! replicator between them (NamespaceMap spec rome -> milan, status milan -> rome). naples is
//! a VirtualNode without a cluster behind it (its mappings never become ready).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use liqo_core::{
    api::offloading::v1beta1::{
        ConditionStatus, NamespaceMap, NamespaceOffloading, OffloadingPhase,
        RemoteNamespaceConditionType, VirtualNode,
    },
    runtime::Shutdown,
};
use liqo_reflect::offloading::{namespace_map, namespace_offloading};
use liqo_testenv::{Cluster, ClusterConfig, eventually};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn virtual_node(rome: &Cluster, id: &str, region: &str) {
    let ns = format!("liqo-tenant-{id}");
    rome.create_namespace(&ns).await.unwrap();
    let vn: VirtualNode = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "VirtualNode",
        "metadata": {"name": id, "namespace": ns},
        "spec": {"clusterID": id, "labels": {"topology.liqo.io/region": region}},
    }))
    .unwrap();
    Api::<VirtualNode>::namespaced(rome.client(), &ns)
        .create(&PostParams::default(), &vn)
        .await
        .unwrap();
}

/// One pass of the replicator: rome's NamespaceMaps for milan to milan's tenant namespace of
/// rome, and their status back.
async fn replicate(rome: &Client, milan: &Client) {
    let local: Api<NamespaceMap> = Api::namespaced(rome.clone(), "liqo-tenant-milan");
    let remote: Api<NamespaceMap> = Api::namespaced(milan.clone(), "liqo-tenant-rome");
    let Ok(Some(map)) = local.get_opt("milan").await else {
        return;
    };
    let replica = json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceMap",
        "metadata": {"name": "milan", "namespace": "liqo-tenant-rome", "labels": {
            "liqo.io/replicated": "true", "liqo.io/originID": "rome", "liqo.io/remote-cluster-id": "rome",
        }},
        "spec": {"desiredMapping": map.spec.desired_mapping},
    });
    let _ = remote
        .patch(
            "milan",
            &PatchParams::apply("lof-replicator").force(),
            &Patch::Apply(&replica),
        )
        .await;
    let Ok(Some(replica)) = remote.get_opt("milan").await else {
        return;
    };
    let current = replica
        .status
        .map(|s| s.current_mapping)
        .unwrap_or_default();
    let mut mapping = serde_json::to_value(&current).unwrap();
    for key in map
        .status
        .map(|s| s.current_mapping)
        .unwrap_or_default()
        .keys()
    {
        if !current.contains_key(key) {
            mapping[key] = serde_json::Value::Null;
        }
    }
    let _ = local
        .patch_status(
            "milan",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentMapping": mapping}})),
        )
        .await;
}

async fn offload(rome: &Client, namespace: &str, spec: serde_json::Value) {
    let nso: NamespaceOffloading = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": namespace},
        "spec": spec,
    }))
    .unwrap();
    Api::<NamespaceOffloading>::namespaced(rome.clone(), namespace)
        .create(&PostParams::default(), &nso)
        .await
        .unwrap();
}

async fn phase_of(rome: &Client, namespace: &str, phase: OffloadingPhase) -> NamespaceOffloading {
    let api: Api<NamespaceOffloading> = Api::namespaced(rome.clone(), namespace);
    eventually(&format!("{namespace} to be {phase:?}"), WAIT, || async {
        api.get_opt("offloading")
            .await
            .unwrap()
            .filter(|n| n.status.as_ref().and_then(|s| s.offloading_phase) == Some(phase))
    })
    .await
}

fn condition(
    nso: &NamespaceOffloading,
    cluster: &str,
    type_: RemoteNamespaceConditionType,
) -> (ConditionStatus, String) {
    let c = nso.status.as_ref().unwrap().remote_namespaces_conditions[cluster]
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap();
    (c.status, c.reason.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_extended_to_the_selected_clusters() {
    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new("lof-ns-rome").nodes(0),
        ClusterConfig::new("lof-ns-milan").nodes(0),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    rome.install_crds(liqo_core::api::crds()).await.unwrap();
    milan.install_crds(liqo_core::api::crds()).await.unwrap();
    milan.create_namespace("liqo-tenant-rome").await.unwrap();
    virtual_node(&rome, "milan", "north").await;
    virtual_node(&rome, "naples", "south").await;
    for ns in ["demo", "same", "taken", "sel"] {
        rome.create_namespace(ns).await.unwrap();
    }
    milan.create_namespace("taken").await.unwrap();

    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(namespace_offloading::run(
        rome.client(),
        namespace_offloading::Config {
            local_cluster_id: "rome".parse().unwrap(),
        },
        shutdown.wait_owned(),
    ));
    let provider = tokio::spawn(namespace_map::run(
        milan.client(),
        namespace_map::Config::default(),
        shutdown.wait_owned(),
    ));
    let (r, m, stop) = (rome.client(), milan.client(), shutdown.clone());
    let replicator = tokio::spawn(async move {
        while !stop.is_triggered() {
            replicate(&r, &m).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let (rome_c, milan_c) = (rome.client(), milan.client());
    let north = json!({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.liqo.io/region", "operator": "In", "values": ["north"]},
    ]}]});

    // DefaultName, selector on north: only milan, which gets demo-rome.
    offload(&rome_c, "demo", json!({"clusterSelector": north})).await;
    let demo = phase_of(&rome_c, "demo", OffloadingPhase::Ready).await;
    let status = demo.status.clone().unwrap();
    assert_eq!(status.remote_namespace_name.as_deref(), Some("demo-rome"));
    use RemoteNamespaceConditionType::{OffloadingRequired, Ready};
    assert_eq!(
        condition(&demo, "milan", OffloadingRequired).0,
        ConditionStatus::True
    );
    assert_eq!(condition(&demo, "milan", Ready).0, ConditionStatus::True);
    assert_eq!(
        condition(&demo, "naples", OffloadingRequired).0,
        ConditionStatus::False
    );
    assert!(
        demo.finalizers()
            .contains(&"namespaceoffloading-controller.liqo.io/finalizer".to_owned())
    );
    let namespaces: Api<Namespace> = Api::all(milan_c.clone());
    let twin = namespaces.get("demo-rome").await.unwrap();
    assert_eq!(
        twin.annotations()["liqo.io/managed-by-namespace-map"],
        "liqo-tenant-rome/milan"
    );
    assert_eq!(twin.annotations()["liqo.io/original-name"], "demo");
    assert_eq!(twin.labels()["liqo.io/remote-cluster-id"], "rome");
    let binding = Api::<RoleBinding>::namespaced(milan_c.clone(), "demo-rome")
        .get("liqo-tenant-rome")
        .await
        .unwrap();
    assert_eq!(binding.role_ref.name, "liqo-virtual-kubelet-remote");
    assert_eq!(binding.subjects.unwrap()[0].name, "rome");
    let local_ns = Api::<Namespace>::all(rome_c.clone())
        .get("demo")
        .await
        .unwrap();
    assert_eq!(local_ns.labels()["liqo.io/scheduling-enabled"], "true");
    let naples_map = Api::<NamespaceMap>::namespaced(rome_c.clone(), "liqo-tenant-naples")
        .get_opt("naples")
        .await
        .unwrap();
    assert!(naples_map.is_none_or(|m| !m.spec.desired_mapping.contains_key("demo")));

    // EnforceSameName on every cluster: naples never answers, so InProgress; Local strategy.
    offload(
        &rome_c,
        "same",
        json!({"namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "Local"}),
    )
    .await;
    let same = eventually("same to be ready in milan", WAIT, || async {
        let nso = Api::<NamespaceOffloading>::namespaced(rome_c.clone(), "same")
            .get_opt("offloading")
            .await
            .unwrap()?;
        let ready = nso
            .status
            .as_ref()?
            .remote_namespaces_conditions
            .get("milan")?
            .iter()
            .any(|c| c.type_ == Ready && c.status == ConditionStatus::True);
        ready.then_some(nso)
    })
    .await;
    assert_eq!(
        same.status.as_ref().unwrap().offloading_phase,
        Some(OffloadingPhase::InProgress)
    );
    assert_eq!(
        condition(&same, "naples", OffloadingRequired).0,
        ConditionStatus::True
    );
    assert_eq!(condition(&same, "naples", Ready).0, ConditionStatus::False);
    let naples_map = Api::<NamespaceMap>::namespaced(rome_c.clone(), "liqo-tenant-naples")
        .get("naples")
        .await
        .unwrap();
    assert_eq!(
        naples_map.spec.desired_mapping,
        BTreeMap::from([("same".to_owned(), "same".to_owned())])
    );
    assert!(namespaces.get_opt("same").await.unwrap().is_some());
    let same_ns = Api::<Namespace>::all(rome_c.clone())
        .get("same")
        .await
        .unwrap();
    // Labelled (a remote namespace is ready) so the webhook keeps its pods off virtual nodes.
    assert_eq!(same_ns.labels()["liqo.io/scheduling-enabled"], "true");

    // A namespace with the name already exists in milan and is not Liqo's: AllFailed.
    offload(
        &rome_c,
        "taken",
        json!({"namespaceMappingStrategy": "EnforceSameName", "clusterSelector": north}),
    )
    .await;
    // The namespace is labelled for scheduling in advance (as the documentation suggests): a
    // failed offloading rolls the label back, so its pods are no longer held or mutated.
    Api::<Namespace>::all(rome_c.clone())
        .patch(
            "taken",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": "true"}}})),
        )
        .await
        .unwrap();
    let taken = phase_of(&rome_c, "taken", OffloadingPhase::AllFailed).await;
    eventually("the label of taken rolled back", WAIT, || async {
        let ns = Api::<Namespace>::all(rome_c.clone())
            .get("taken")
            .await
            .ok()?;
        (!ns.labels().contains_key("liqo.io/scheduling-enabled")).then_some(())
    })
    .await;
    assert_eq!(
        condition(&taken, "milan", Ready),
        (ConditionStatus::False, "CreationLoopBackOff".to_owned())
    );
    assert!(
        !namespaces
            .get("taken")
            .await
            .unwrap()
            .annotations()
            .contains_key("liqo.io/managed-by-namespace-map")
    );

    // SelectedName.
    offload(
        &rome_c,
        "sel",
        json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": "chosen", "clusterSelector": north}),
    )
    .await;
    let sel = phase_of(&rome_c, "sel", OffloadingPhase::Ready).await;
    assert_eq!(
        sel.status.unwrap().remote_namespace_name.as_deref(),
        Some("chosen")
    );
    assert_eq!(
        namespaces.get("chosen").await.unwrap().annotations()["liqo.io/original-name"],
        "sel"
    );

    // Unoffloading demo: the twin namespace goes, then the NamespaceOffloading.
    Api::<NamespaceOffloading>::namespaced(rome_c.clone(), "demo")
        .delete("offloading", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the NamespaceOffloading of demo to be gone",
        WAIT,
        || async {
            Api::<NamespaceOffloading>::namespaced(rome_c.clone(), "demo")
                .get_opt("offloading")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        namespaces
            .get_opt("demo-rome")
            .await
            .unwrap()
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some())
    );
    let local_ns = Api::<Namespace>::all(rome_c.clone())
        .get("demo")
        .await
        .unwrap();
    assert!(!local_ns.labels().contains_key("liqo.io/scheduling-enabled"));
    let map = Api::<NamespaceMap>::namespaced(rome_c.clone(), "liqo-tenant-milan")
        .get("milan")
        .await
        .unwrap();
    assert!(!map.spec.desired_mapping.contains_key("demo"));
    assert!(map.spec.desired_mapping.contains_key("same"));
    // Other namespaces are untouched.
    let list = namespaces.list(&ListParams::default()).await.unwrap();
    assert!(list.items.iter().any(|n| n.name_any() == "chosen"));

    shutdown.trigger();
    replicator.await.unwrap();
    consumer.await.unwrap().unwrap();
    provider.await.unwrap().unwrap();
}
