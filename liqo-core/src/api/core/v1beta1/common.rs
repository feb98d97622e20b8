//! Types of `core.liqo.io/v1beta1` shared with the other Liqo API groups.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A storage class a provider offers to its consumers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageType {
    /// Name of the StorageClass in the provider cluster.
    pub storage_class_name: String,
    /// Whether this class is the one used when a claim does not name any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// An ingress class a provider offers to its consumers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressType {
    /// Name of the IngressClass in the provider cluster.
    pub ingress_class_name: String,
    /// Whether this class is the one used when an Ingress does not name any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// A load-balancer class a provider offers to its consumers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerType {
    /// Name of the load-balancer class in the provider cluster.
    pub load_balancer_class_name: String,
    /// Whether this class is the one used when a Service does not name any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}
