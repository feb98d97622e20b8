//! The `ResourceSlice` kind: an amount of resources a consumer asks a provider for.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthParams;
use crate::api::core::v1beta1::{IngressType, LoadBalancerType, StorageType};

/// Value of `spec.class` for slices of the default class.
pub const RESOURCE_SLICE_CLASS_DEFAULT: &str = "default";

/// Desired state of a ResourceSlice.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.liqo.io",
    version = "v1beta1",
    kind = "ResourceSlice",
    plural = "resourceslices",
    shortname = "rslice",
    category = "liqo",
    namespaced,
    status = "ResourceSliceStatus",
    derive = "PartialEq",
    doc = "A slice of a provider's resources requested by a consumer; created on the consumer, replicated to the provider, which accepts or denies it in the status.",
    printcolumn = r#"{"name":"Authentication","type":"string","jsonPath":".status.conditions[?(@.type==\"Authentication\")].status"}"#,
    printcolumn = r#"{"name":"Resources","type":"string","jsonPath":".status.conditions[?(@.type==\"Resources\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSliceSpec {
    /// Cluster ID of the consumer asking for the resources.
    #[serde(
        rename = "consumerClusterID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::api::schema::cluster_id")]
    pub consumer_cluster_id: Option<String>,
    /// Cluster ID of the provider asked for the resources.
    #[serde(
        rename = "providerClusterID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::api::schema::cluster_id")]
    pub provider_cluster_id: Option<String>,
    /// Requested quantities, by resource name (`cpu`, `memory`, `pods`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
    /// Class of the slice: `default`, a custom class, or unset (unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// PEM certificate signing request for the identity of the virtual kubelet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub csr: Option<ByteString>,
}

/// Aspect of a ResourceSlice a condition reports on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ResourceSliceConditionType {
    /// Whether the provider issued credentials for the slice.
    Authentication,
    /// Whether the provider granted the requested resources.
    Resources,
}

/// Outcome reported by a ResourceSlice condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ResourceSliceConditionStatus {
    /// The request was accepted.
    Accepted,
    /// The request was refused.
    Denied,
}

/// A condition reported in the status of a ResourceSlice.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSliceCondition {
    /// What the condition is about.
    #[serde(rename = "type")]
    pub type_: ResourceSliceConditionType,
    /// Outcome.
    pub status: ResourceSliceConditionStatus,
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason of the last change, in UpperCamelCase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details of the last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a ResourceSlice, written by the provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSliceStatus {
    /// Outcome of the authentication and of the resource request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ResourceSliceCondition>,
    /// Granted quantities, by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
    /// Credentials for the virtual kubelet serving this slice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_params: Option<AuthParams>,
    /// Storage classes the provider offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_classes: Vec<StorageType>,
    /// Ingress classes the provider offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_classes: Vec<IngressType>,
    /// Load-balancer classes the provider offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_classes: Vec<LoadBalancerType>,
    /// Labels to put on the virtual node standing for this slice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
    /// Node selector to apply to the pods offloaded through this slice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
}
