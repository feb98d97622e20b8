//! The PersistentVolumeClaim reflector on two real control planes (rome consumes, milan
//! provides): a claim of the virtual class scheduled on milan's virtual node gets a twin in
//! milan, bound by milan's kube-controller-manager to a static volume of the requested class;
//! rome gets a local volume pinned to the virtual node, which rome's kube-controller-manager
//! binds to the claim; other claims are left alone, a remote claim the reflector does not own
//! is never touched, and deleting the local claim removes the twin and the local volume.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::time::Duration;

use k8s_openapi::api::{
    core::v1::{Node, PersistentVolume, PersistentVolumeClaim},
    events::v1::Event,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use liqo_core::ids::NamespacePair;
use liqo_reflect::{
    Clusters, Reflector, ReflectorConfig,
    metrics::Registry,
    storage::{PersistentVolumeClaimReflector, volume_name},
};
use liqo_testenv::{Cluster, ClusterConfig, eventually};
use serde_json::json;

const LOCAL_NS: &str = "demo";
const REMOTE_NS: &str = "demo-rome";
const VIRTUAL_NODE: &str = "liqo-milan";
const WAIT: Duration = Duration::from_secs(60);

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let obj: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

fn claim(name: &str, class: &str, annotations: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "db"}, "annotations": annotations},
        "spec": {
            "storageClassName": class,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    })
}

fn phase(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.status.as_ref()?.phase.as_deref()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_on_the_virtual_node_are_provisioned_by_the_provider() {
    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new("stor-rome").nodes(0),
        ClusterConfig::new("stor-milan").nodes(0),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    let (local, remote) = (rome.client(), milan.client());
    rome.create_namespace(LOCAL_NS).await.unwrap();
    milan.create_namespace(REMOTE_NS).await.unwrap();

    // Rome's virtual node for milan (never Ready: nothing runs it, and nothing needs to).
    create(
        &Api::<Node>::all(local.clone()),
        json!({"metadata": {"name": VIRTUAL_NODE, "labels": {
            "liqo.io/type": "virtual-node",
            "liqo.io/remote-cluster-id": "milan",
            "kubernetes.io/hostname": VIRTUAL_NODE,
        }}}),
    )
    .await;
    // Milan's storage: one static volume of class `standard` (no StorageClass object needed).
    create(
        &Api::<PersistentVolume>::all(remote.clone()),
        json!({
            "metadata": {"name": "standard-1"},
            "spec": {
                "storageClassName": "standard",
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/liqo-rs-storage-test"},
            },
        }),
    )
    .await;

    let registry = Registry::default();
    let reflector = PersistentVolumeClaimReflector::new(
        Clusters {
            local: local.clone(),
            remote: remote.clone(),
            local_id: "rome".parse().unwrap(),
            remote_id: "milan".parse().unwrap(),
        },
        ReflectorConfig::default(),
        &registry,
    )
    .virtual_storage_class("liqo");
    assert_eq!(reflector.name(), "persistentvolumeclaims");
    reflector
        .start_namespace(&NamespacePair::new(LOCAL_NS, REMOTE_NS).unwrap())
        .await
        .unwrap();

    let local_claims: Api<PersistentVolumeClaim> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_claims: Api<PersistentVolumeClaim> = Api::namespaced(remote.clone(), REMOTE_NS);
    let local_volumes: Api<PersistentVolume> = Api::all(local.clone());
    let remote_volumes: Api<PersistentVolume> = Api::all(remote.clone());

    // Claims that are not this reflector's: another class, not scheduled yet, scheduled on a
    // node that is not milan's virtual node.
    let selected = json!({"volume.kubernetes.io/selected-node": VIRTUAL_NODE});
    create(
        &local_claims,
        claim("other-class", "fast", selected.clone()),
    )
    .await;
    create(&local_claims, claim("unscheduled", "liqo", json!({}))).await;
    create(
        &local_claims,
        claim(
            "elsewhere",
            "liqo",
            json!({"volume.kubernetes.io/selected-node": "worker-1"}),
        ),
    )
    .await;

    // The claim that is.
    let data = create(
        &local_claims,
        claim(
            "data",
            "liqo",
            json!({
                "volume.kubernetes.io/selected-node": VIRTUAL_NODE,
                "liqo.io/remote-storage-class": "standard",
            }),
        ),
    )
    .await;
    let data_uid = data.uid().unwrap();

    // Its twin has the provider's class and is bound by milan's kube-controller-manager.
    let twin = eventually("the remote claim to be Bound", WAIT, || async {
        remote_claims
            .get_opt("data")
            .await
            .unwrap()
            .filter(|c| phase(c) == Some("Bound"))
    })
    .await;
    let twin_spec = twin.spec.clone().unwrap();
    assert_eq!(twin_spec.storage_class_name.as_deref(), Some("standard"));
    assert_eq!(twin_spec.volume_name.as_deref(), Some("standard-1"));
    assert_eq!(
        twin_spec.access_modes,
        Some(vec!["ReadWriteOnce".to_owned()])
    );
    assert_eq!(twin.labels()["offloading.liqo.io/origin"], "rome");
    assert_eq!(twin.labels()["offloading.liqo.io/destination"], "milan");
    assert_eq!(twin.labels()["app"], "db");
    for key in [
        "volume.kubernetes.io/selected-node",
        "liqo.io/remote-storage-class",
    ] {
        assert!(!twin.annotations().contains_key(key), "{key} copied");
    }

    // The local volume standing for it: pinned to the virtual node, pre-bound to the claim.
    let pv = eventually("the local volume", WAIT, || async {
        local_volumes
            .get_opt(&volume_name(&data_uid))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(pv.labels()["liqo.io/remote-cluster-id"], "milan");
    assert_eq!(
        pv.labels()["storage.liqo.io/remote-pvc-namespace"],
        REMOTE_NS
    );
    assert_eq!(
        pv.labels()["storage.liqo.io/remote-pvc-uid"],
        twin.uid().unwrap()
    );
    let spec = pv.spec.clone().unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("liqo"));
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
    assert!(spec.local.is_some());
    let claim_ref = spec.claim_ref.unwrap();
    assert_eq!(claim_ref.namespace.as_deref(), Some(LOCAL_NS));
    assert_eq!(claim_ref.name.as_deref(), Some("data"));
    assert_eq!(claim_ref.uid.as_deref(), Some(data_uid.as_str()));
    let terms = spec
        .node_affinity
        .unwrap()
        .required
        .unwrap()
        .node_selector_terms;
    let expressions = terms[0].match_expressions.clone().unwrap();
    assert!(expressions.iter().any(|e| e.key == "kubernetes.io/hostname"
        && e.operator == "In"
        && e.values.as_deref() == Some(&[VIRTUAL_NODE.to_owned()][..])));
    assert!(
        expressions
            .iter()
            .any(|e| e.key == "liqo.io/remote-cluster-id"
                && e.values.as_deref() == Some(&["milan".to_owned()][..]))
    );

    // Rome's kube-controller-manager binds the claim to it.
    let bound = eventually("the local claim to be Bound", WAIT, || async {
        local_claims
            .get_opt("data")
            .await
            .unwrap()
            .filter(|c| phase(c) == Some("Bound"))
    })
    .await;
    assert_eq!(
        bound.spec.unwrap().volume_name.as_deref(),
        Some(volume_name(&data_uid).as_str())
    );

    // The other claims were not reflected (they were queued before `data`).
    for name in ["other-class", "unscheduled", "elsewhere"] {
        assert!(
            remote_claims.get_opt(name).await.unwrap().is_none(),
            "{name} reflected"
        );
    }

    // A remote claim the reflector does not own is neither overwritten nor deleted; the local
    // claim gets a FailedReflection Event.
    create(&remote_claims, claim("taken", "milan-class", json!({}))).await;
    create(&local_claims, claim("taken", "liqo", selected.clone())).await;
    let events: Api<Event> = Api::namespaced(local.clone(), LOCAL_NS);
    let event = eventually("a FailedReflection event", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("FailedReflection")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("taken")
            })
    })
    .await;
    assert!(
        event
            .note
            .unwrap_or_default()
            .contains("not managed by liqo")
    );
    local_claims
        .delete("taken", &DeleteParams::default())
        .await
        .unwrap();

    // Deleting the local claim removes the twin and the local volume.
    local_claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the remote claim to go", WAIT, || async {
        remote_claims
            .get_opt("data")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    eventually("the local volume to go", WAIT, || async {
        local_volumes
            .get_opt(&volume_name(&data_uid))
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // The foreign remote claim is still there, untouched, after its local namesake went.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let taken = remote_claims.get("taken").await.unwrap();
    assert!(!taken.labels().contains_key("offloading.liqo.io/origin"));
    assert!(taken.metadata.deletion_timestamp.is_none());
    assert_eq!(
        taken.spec.unwrap().storage_class_name.as_deref(),
        Some("milan-class")
    );
    // Milan's static volume is released, not deleted (its reclaim policy is Retain).
    assert!(
        remote_volumes
            .get_opt("standard-1")
            .await
            .unwrap()
            .is_some()
    );

    let metrics = registry.render();
    assert!(
        metrics.contains("liqo_reflection_items_total{reflector=\"persistentvolumeclaims\"}"),
        "{metrics}"
    );
    reflector
        .stop_namespace(&NamespacePair::new(LOCAL_NS, REMOTE_NS).unwrap())
        .await
        .unwrap();
}
