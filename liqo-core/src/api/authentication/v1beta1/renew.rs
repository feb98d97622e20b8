//! The `Renew` kind: a request to refresh the certificate of an identity.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::LocalObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AuthParams, IdentityType};

/// Desired state of a Renew.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.liqo.io",
    version = "v1beta1",
    kind = "Renew",
    plural = "renews",
    category = "liqo",
    namespaced,
    status = "RenewStatus",
    derive = "PartialEq",
    doc = "A consumer's request for fresh credentials before its current certificate expires; created on the consumer and replicated to the provider, which answers in the status.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RenewSpec {
    /// Cluster ID of the consumer asking for the renewal.
    #[serde(
        rename = "consumerClusterID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::api::schema::cluster_id")]
    pub consumer_cluster_id: Option<String>,
    /// Public key of the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub public_key: Option<ByteString>,
    /// New PEM certificate signing request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub csr: Option<ByteString>,
    /// Kind of identity being renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<IdentityType>,
    /// ResourceSlice the identity belongs to, for ResourceSlice identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub resource_slice_ref: Option<LocalObjectReference>,
}

/// Observed state of a Renew.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewStatus {
    /// The renewed credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_params: Option<AuthParams>,
}
