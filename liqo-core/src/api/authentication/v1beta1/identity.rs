//! The `Identity` kind: credentials a consumer holds to act in a provider cluster.

use k8s_openapi::api::core::v1::LocalObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthParams;

/// Desired state of an Identity.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.liqo.io",
    version = "v1beta1",
    kind = "Identity",
    plural = "identities",
    shortname = "id",
    category = "liqo",
    namespaced,
    status = "IdentityStatus",
    derive = "PartialEq",
    doc = "Credentials (and where to use them) that let the local cluster operate in a provider cluster.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"KubeconfigSecret","type":"string","priority":1,"jsonPath":".status.kubeconfigSecretRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySpec {
    /// Cluster ID of the provider these credentials are for.
    #[serde(rename = "clusterID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::cluster_id")]
    pub cluster_id: Option<String>,
    /// What the credentials allow.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<IdentityType>,
    /// The credentials themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_params: Option<AuthParams>,
    /// Namespace of the provider to operate in (the default namespace of the generated
    /// kubeconfig).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Purpose of an Identity (and of a Renew).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum IdentityType {
    /// Replicate Liqo resources to the provider (one per peering).
    ControlPlane,
    /// Run a virtual kubelet against the provider for the resources of one ResourceSlice.
    ResourceSlice,
}

/// Observed state of an Identity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityStatus {
    /// Secret, in the same namespace, holding the kubeconfig built from the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub kubeconfig_secret_ref: Option<LocalObjectReference>,
}
