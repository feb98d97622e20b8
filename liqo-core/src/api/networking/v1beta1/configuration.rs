//! The `Configuration` kind: the network parameters of a peering.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Cidr;

/// Type of the condition set once the CIDRs of a Configuration have been remapped and applied.
pub const CONDITION_NETWORK_CIDRS_CONFIGURED: &str = "NetworkCIDRsConfigured";

/// The CIDRs of both clusters of a peering.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "Configuration",
    plural = "configurations",
    shortname = "conf",
    category = "liqo",
    namespaced,
    status = "ConfigurationStatus",
    derive = "PartialEq",
    doc = "Network configuration of a peering: the pod and external CIDRs of the local and of the remote cluster, and (in the status) how the remote ones were remapped locally.",
    printcolumn = r#"{"name":"Desired Pod CIDR ","type":"string","jsonPath":".spec.remote.cidr.pod"}"#,
    printcolumn = r#"{"name":"Remapped Pod CIDR","type":"string","jsonPath":".status.remote.cidr.pod"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Desired External CIDR","type":"string","priority":1,"jsonPath":".spec.remote.cidr.external"}"#,
    printcolumn = r#"{"name":"Remapped External CIDR","type":"string","priority":1,"jsonPath":".status.remote.cidr.external"}"#,
    printcolumn = r#"{"name":"ClusterID","type":"string","priority":1,"jsonPath":".metadata.labels.liqo\\.io/remote-cluster-id"}"#
)]
pub struct ConfigurationSpec {
    /// Network of the cluster the object lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<ClusterConfig>,
    /// Network of the peer, as the peer sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<ClusterConfig>,
}

/// Network parameters of one cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ClusterConfig {
    /// CIDRs of the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<ClusterConfigCidr>,
}

/// The CIDRs of a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ClusterConfigCidr {
    /// Pod CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod: Vec<Cidr>,
    /// External CIDRs (used to reach non-pod IPs of the cluster through remapping).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<Cidr>,
}

/// Observed state of a Configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ConfigurationStatus {
    /// Conditions of the configuration (for example `NetworkCIDRsConfigured`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Network of the peer as the local cluster sees it, after remapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<ClusterConfig>,
}
