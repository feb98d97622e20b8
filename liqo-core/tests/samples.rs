//! The sample manifests of `deployments/samples` (one per kind) deserialize into their Rust type
//! and serialize back to the very same document, so every field they use is known to the types
//! and spelled as upstream Liqo spells it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use liqo_core::api::authentication::v1beta1 as auth;
use liqo_core::api::core::v1beta1 as core;
use liqo_core::api::ipam::v1alpha1 as ipam;
use liqo_core::api::networking::v1beta1 as net;
use liqo_core::api::offloading::v1beta1 as off;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployments/samples")
}

/// The file holding the sample of a kind: its name in lowercase.
fn sample_file(kind: &str) -> String {
    format!("{}.yaml", kind.to_lowercase())
}

/// Reads the sample of `K`, checks it round-trips through `K`, and returns its kind.
fn check_sample<K>(crds: &[CustomResourceDefinition]) -> String
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let path = samples_dir().join(sample_file(&kind));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));

    let original: serde_json::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|err| panic!("{}: not YAML: {err}", path.display()));
    assert_eq!(
        original["apiVersion"],
        K::api_version(&()).as_ref(),
        "{kind}: apiVersion"
    );
    assert_eq!(original["kind"], kind.as_str(), "{kind}: kind");
    assert!(
        original["metadata"]["name"].is_string(),
        "{kind}: metadata.name"
    );

    let typed: K = serde_yaml::from_str(&text).unwrap_or_else(|err| {
        panic!(
            "{}: does not deserialize into {kind}: {err}",
            path.display()
        )
    });
    let back = serde_json::to_value(&typed)
        .unwrap_or_else(|err| panic!("{kind}: does not serialize: {err}"));
    assert_eq!(
        back, original,
        "{kind}: the sample changed through a round trip (unknown field, different spelling or \
         default value not written in the sample)"
    );

    // Namespaced kinds carry a namespace, cluster-scoped ones do not.
    let crd = crds
        .iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("{kind}: no CRD"));
    let namespaced = crd.spec.scope == "Namespaced";
    assert_eq!(
        original["metadata"]["namespace"].is_string(),
        namespaced,
        "{kind}: metadata.namespace must be set exactly for namespaced kinds"
    );
    // Kinds with a status subresource have a status to patch in, the others have none.
    let has_status_subresource = crd.spec.versions[0]
        .subresources
        .as_ref()
        .is_some_and(|s| s.status.is_some());
    assert_eq!(
        original.get("status").is_some(),
        has_status_subresource,
        "{kind}: a status block must be present exactly when the kind has a status subresource"
    );
    kind
}

#[test]
fn every_sample_round_trips_through_its_type() {
    let crds = liqo_core::api::crds();
    let checked: BTreeSet<String> = [
        check_sample::<core::ForeignCluster>(&crds),
        check_sample::<auth::Tenant>(&crds),
        check_sample::<auth::Identity>(&crds),
        check_sample::<auth::ResourceSlice>(&crds),
        check_sample::<auth::Renew>(&crds),
        check_sample::<off::VirtualNode>(&crds),
        check_sample::<off::VkOptionsTemplate>(&crds),
        check_sample::<off::NamespaceOffloading>(&crds),
        check_sample::<off::NamespaceMap>(&crds),
        check_sample::<off::ShadowPod>(&crds),
        check_sample::<off::ShadowEndpointSlice>(&crds),
        check_sample::<off::Quota>(&crds),
        check_sample::<net::Configuration>(&crds),
        check_sample::<net::GatewayServer>(&crds),
        check_sample::<net::GatewayClient>(&crds),
        check_sample::<net::WgGatewayServer>(&crds),
        check_sample::<net::WgGatewayClient>(&crds),
        check_sample::<net::WgGatewayServerTemplate>(&crds),
        check_sample::<net::WgGatewayClientTemplate>(&crds),
        check_sample::<net::PublicKey>(&crds),
        check_sample::<net::Connection>(&crds),
        check_sample::<net::InternalFabric>(&crds),
        check_sample::<net::InternalNode>(&crds),
        check_sample::<net::GeneveTunnel>(&crds),
        check_sample::<net::RouteConfiguration>(&crds),
        check_sample::<net::FirewallConfiguration>(&crds),
        check_sample::<ipam::Network>(&crds),
        check_sample::<ipam::Ip>(&crds),
    ]
    .into_iter()
    .collect();

    let kinds: BTreeSet<String> = crds.into_iter().map(|crd| crd.spec.names.kind).collect();
    assert_eq!(checked, kinds, "every kind has a sample, and only those");
}

#[test]
fn no_stray_files_in_the_samples_directory() {
    let expected: BTreeSet<String> = liqo_core::api::crds()
        .iter()
        .map(|crd| sample_file(&crd.spec.names.kind))
        .collect();
    let dir = samples_dir();
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    assert_eq!(found, expected);
}
