//! The provider's ShadowEndpointSlice controller on a real control plane whose
//! kube-controller-manager is stopped (so no garbage collector and no EndpointSlice
//! controller help): a shadow becomes an EndpointSlice, follows the shadow's changes, comes
//! back when deleted, and goes when the shadow goes; a slice of the same name made by someone
//! else is left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use liqo_core::{api::offloading::v1beta1::ShadowEndpointSlice, runtime::Shutdown};
use liqo_reflect::offloading::shadow_endpointslice;
use liqo_testenv::{Cluster, ClusterConfig, Component, eventually};
use serde_json::json;

const NS: &str = "demo-rome";
const WAIT: Duration = Duration::from_secs(60);

fn shadow(name: &str, address: &str) -> ShadowEndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "ShadowEndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
        "spec": {"template": {
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
        }},
    }))
    .unwrap()
}

fn addresses(slice: &EndpointSlice) -> Vec<String> {
    slice
        .endpoints
        .iter()
        .flatten()
        .flat_map(|e| e.addresses.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_become_endpointslices_and_take_them_along() {
    let mut milan = Cluster::start(ClusterConfig::new("ses-milan").nodes(0))
        .await
        .unwrap();
    milan.install_crds(liqo_core::api::crds()).await.unwrap();
    milan.create_namespace(NS).await.unwrap();
    milan.stop_component(Component::ControllerManager);

    let shutdown = Shutdown::new();
    let controller = tokio::spawn(shadow_endpointslice::run(
        milan.client(),
        shadow_endpointslice::Config::default(),
        shutdown.wait_owned(),
    ));
    let shadows: Api<ShadowEndpointSlice> = Api::namespaced(milan.client(), NS);
    let slices: Api<EndpointSlice> = Api::namespaced(milan.client(), NS);

    // A shadow becomes a slice controlled by it, with its endpoints.
    let created = shadows
        .create(&PostParams::default(), &shadow("web-x1", "10.200.0.7"))
        .await
        .unwrap();
    let slice = eventually("the EndpointSlice of the shadow", WAIT, || async {
        slices
            .get_opt("web-x1")
            .await
            .unwrap()
            .filter(|s| addresses(s) == ["10.200.0.7"])
    })
    .await;
    assert_eq!(slice.labels()["kubernetes.io/service-name"], "web");
    let owner = &slice.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(&owner.uid)),
        ("ShadowEndpointSlice", created.metadata.uid.as_ref())
    );

    // It follows the shadow, and comes back when deleted.
    shadows
        .patch(
            "web-x1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"endpoints": [
                {"addresses": ["10.200.0.8"], "conditions": {"ready": true}}
            ]}}})),
        )
        .await
        .unwrap();
    eventually("the EndpointSlice to follow the shadow", WAIT, || async {
        slices
            .get_opt("web-x1")
            .await
            .unwrap()
            .filter(|s| addresses(s) == ["10.200.0.8"])
    })
    .await;
    let old = slices.get("web-x1").await.unwrap().uid();
    slices
        .delete("web-x1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the EndpointSlice to come back", WAIT, || async {
        slices
            .get_opt("web-x1")
            .await
            .unwrap()
            .filter(|s| s.uid() != old && addresses(s) == ["10.200.0.8"])
    })
    .await;

    // A slice someone else made keeps its endpoints; the shadow beside it still works.
    let foreign: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "taken", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}],
    }))
    .unwrap();
    slices
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    shadows
        .create(&PostParams::default(), &shadow("taken", "10.200.0.9"))
        .await
        .unwrap();
    shadows
        .create(&PostParams::default(), &shadow("web-x2", "10.200.0.10"))
        .await
        .unwrap();
    eventually("the EndpointSlice of a later shadow", WAIT, || async {
        slices.get_opt("web-x2").await.unwrap()
    })
    .await;
    assert_eq!(addresses(&slices.get("taken").await.unwrap()), ["10.0.0.1"]);

    // Deleting the shadow deletes its slice, with no garbage collector running.
    shadows
        .delete("web-x1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the EndpointSlice to go with its shadow", WAIT, || async {
        slices
            .get_opt("web-x1")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(slices.get_opt("taken").await.unwrap().is_some());

    shutdown.trigger();
    controller.await.unwrap().unwrap();
}
