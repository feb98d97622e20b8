//! The offloading webhooks served over TLS and registered with a real API server: a
//! NamespaceOffloading not named `offloading` and a change of its mapping strategy are
//! refused with the reason; pods in a namespace labelled for scheduling are refused until a
//! remote namespace is ready; pods created in a namespace offloaded with the `Remote` strategy
//! get the virtual-node toleration and the node affinity; with the `Local` strategy they are
//! kept off virtual nodes and refused when they target one; pods elsewhere are untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use liqo_core::api::offloading::v1beta1::{
    NamespaceMappingStrategy, NamespaceOffloading, NamespaceOffloadingSpec, PodOffloadingStrategy,
};
use liqo_core::error::KubeErrorExt as _;
use liqo_core::webhook::ServingCertificate;
use liqo_reflect::offloading::admission::{self, WebhookOptions};
use liqo_testenv::{Cluster, ClusterConfig};

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap()
}

async fn create_pod(client: &Client, ns: &str, name: &str) -> Pod {
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod(name))
        .await
        .unwrap()
}

fn offloading(name: &str, strategy: NamespaceMappingStrategy) -> NamespaceOffloading {
    NamespaceOffloading::new(
        name,
        NamespaceOffloadingSpec {
            namespace_mapping_strategy: strategy,
            pod_offloading_strategy: PodOffloadingStrategy::Remote,
            ..NamespaceOffloadingSpec::default()
        },
    )
}

#[tokio::test]
async fn offloading_webhooks_are_served_and_enforced_by_the_api_server() {
    let cluster = Cluster::start(ClusterConfig::new("webhooks").nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    let client = cluster.client();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = WebhookOptions::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    let (dns, ips) = admission::certificate_names(&options);
    let cert = ServingCertificate::self_signed(&dns, &ips).unwrap();
    admission::register(&client, &options, &cert).await.unwrap();
    // Registering again (a restart) is harmless.
    admission::register(&client, &options, &cert).await.unwrap();
    let server_client = client.clone();
    let server_cert = cert.clone();
    tokio::spawn(async move {
        admission::serve(
            server_client,
            listener,
            &server_cert,
            std::future::pending(),
        )
        .await
        .unwrap();
    });

    for ns in ["offloaded", "plain", "local"] {
        cluster.create_namespace(ns).await.unwrap();
    }
    // The namespace-offloading controller labels offloaded namespaces; here by hand, in
    // advance (as the documentation suggests): pods are refused until offloading is possible.
    let label = serde_json::json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": "true"}}});
    for ns in ["offloaded", "local"] {
        Api::<Namespace>::all(client.clone())
            .patch(ns, &PatchParams::default(), &Patch::Merge(&label))
            .await
            .unwrap();
    }
    let early = Api::<Pod>::namespaced(client.clone(), "offloaded")
        .create(&PostParams::default(), &pod("early"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        early.contains("liqoctl offload namespace offloaded"),
        "unexpected refusal: {early}"
    );

    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), "offloaded");
    let refused = api
        .create(
            &PostParams::default(),
            &offloading("not-offloading", NamespaceMappingStrategy::DefaultName),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("must be named \"offloading\""),
        "unexpected refusal: {refused}"
    );
    api.create(
        &PostParams::default(),
        &offloading("offloading", NamespaceMappingStrategy::DefaultName),
    )
    .await
    .unwrap();
    let change = serde_json::json!({"spec": {"namespaceMappingStrategy": "EnforceSameName"}});
    let refused = api
        .patch(
            "offloading",
            &PatchParams::default(),
            &Patch::Merge(&change),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("immutable"),
        "unexpected refusal: {refused}"
    );

    let pending = Api::<Pod>::namespaced(client.clone(), "offloaded")
        .create(&PostParams::default(), &pod("pending"))
        .await
        .unwrap_err()
        .describe();
    assert!(
        pending.contains("not possible yet") && !pending.contains("Some("),
        "unexpected refusal: {pending}"
    );
    // What the controller writes once the twin namespace is ready in milan.
    let ready = serde_json::json!({"status": {
        "offloadingPhase": "Ready",
        "remoteNamespacesConditions": {"milan": [{"type": "Ready", "status": "True"}]},
    }});
    api.patch_status("offloading", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();

    // A pod in the offloaded namespace is mutated; the same pod elsewhere is not.
    let mutated = create_pod(&client, "offloaded", "p").await.spec.unwrap();
    let tolerations = mutated.tolerations.unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("virtual-node.liqo.io/not-allowed")),
        "{tolerations:?}"
    );
    let terms = mutated
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    let requirement = &terms[0].match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (requirement.key.as_str(), requirement.operator.as_str()),
        ("liqo.io/type", "In")
    );
    let plain = create_pod(&client, "plain", "p").await.spec.unwrap();
    assert!(plain.affinity.is_none());
    assert!(
        !plain
            .tolerations
            .unwrap_or_default()
            .iter()
            .any(|t| t.key.as_deref() == Some("virtual-node.liqo.io/not-allowed"))
    );
    // Objects labelled liqo.io/webhook-skip=true are left alone.
    let mut skipped = pod("skipped");
    skipped.metadata = ObjectMeta {
        name: Some("skipped".into()),
        labels: Some(BTreeMap::from([(
            "liqo.io/webhook-skip".to_owned(),
            "true".to_owned(),
        )])),
        ..ObjectMeta::default()
    };
    let skipped = Api::<Pod>::namespaced(client.clone(), "offloaded")
        .create(&PostParams::default(), &skipped)
        .await
        .unwrap();
    assert!(skipped.spec.unwrap().affinity.is_none());

    // The Local strategy: pods stay off virtual nodes, and pods targeting one are refused.
    let local: Api<NamespaceOffloading> = Api::namespaced(client.clone(), "local");
    let mut nso = offloading("offloading", NamespaceMappingStrategy::DefaultName);
    nso.spec.pod_offloading_strategy = PodOffloadingStrategy::Local;
    local.create(&PostParams::default(), &nso).await.unwrap();
    local
        .patch_status("offloading", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    let kept = create_pod(&client, "local", "kept").await.spec.unwrap();
    let terms = kept
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    let requirement = &terms[0].match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (requirement.key.as_str(), requirement.operator.as_str()),
        ("liqo.io/type", "NotIn")
    );
    assert!(
        kept.tolerations
            .unwrap_or_default()
            .iter()
            .all(|t| t.key.as_deref() != Some("virtual-node.liqo.io/not-allowed"))
    );
    let virtual_node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "milan", "labels": {"liqo.io/type": "virtual-node"}},
        }))
        .unwrap();
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .create(&PostParams::default(), &virtual_node)
        .await
        .unwrap();
    let mut pinned = pod("pinned");
    pinned.spec.as_mut().unwrap().node_name = Some("milan".into());
    let refused = Api::<Pod>::namespaced(client.clone(), "local")
        .create(&PostParams::default(), &pinned)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("Local pod offloading strategy") && refused.contains("milan"),
        "unexpected refusal: {refused}"
    );
    let mut selecting = pod("selecting");
    selecting.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([(
        "liqo.io/type".into(),
        "virtual-node".into(),
    )]));
    assert!(
        Api::<Pod>::namespaced(client.clone(), "local")
            .create(&PostParams::default(), &selecting)
            .await
            .is_err()
    );
}
