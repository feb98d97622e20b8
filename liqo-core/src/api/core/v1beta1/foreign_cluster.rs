//! The `ForeignCluster` kind: a peer cluster and the state of every Liqo module towards it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a ForeignCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "core.liqo.io",
    version = "v1beta1",
    kind = "ForeignCluster",
    plural = "foreignclusters",
    shortname = "fc",
    category = "liqo",
    status = "ForeignClusterStatus",
    derive = "PartialEq",
    doc = "A cluster the local cluster is peered with (in either direction), named after its cluster ID.",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.role"}"#,
    printcolumn = r#"{"name":"ClusterID","type":"string","priority":1,"jsonPath":".spec.clusterID"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ForeignClusterSpec {
    /// Identifier of the peer cluster (an RFC 1123 label); it cannot change once set.
    #[serde(rename = "clusterID")]
    #[schemars(schema_with = "crate::api::schema::immutable_cluster_id")]
    pub cluster_id: String,
}

/// Role a peer plays with respect to the local cluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum RoleType {
    /// The peer consumes resources of the local cluster.
    Consumer,
    /// The peer provides resources to the local cluster.
    Provider,
    /// The peer both consumes and provides resources.
    ConsumerAndProvider,
    /// No relationship has been detected yet.
    #[default]
    Unknown,
}

/// Observed state of a ForeignCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForeignClusterStatus {
    /// Most recent `metadata.generation` the controller has acted upon (0: never reconciled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Role of the peer, inferred from the resources that exist for it.
    #[serde(default)]
    pub role: RoleType,
    /// State of each Liqo module towards the peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules: Option<Modules>,
    /// URL of the peer's Kubernetes API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server_url: Option<String>,
    /// URL of the proxy through which the peer's API server is reached, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_proxy_url: Option<String>,
    /// Names of the tenant namespaces used for this peering, on both sides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_namespace: Option<TenantNamespaceType>,
    /// Conditions not tied to a single module (for example the API server reachability).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// State of the three Liqo modules towards a peer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Modules {
    /// The network fabric (gateways, tunnel, IP remapping).
    pub networking: Module,
    /// The authentication handshake (tenants, identities, resource slices).
    pub authentication: Module,
    /// Pod offloading (virtual nodes).
    pub offloading: Module,
}

/// State of one Liqo module towards a peer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Module {
    /// Whether the module is in use for this peer (some of its resources exist).
    pub enabled: bool,
    /// Conditions reported by the module.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// What a condition of a ForeignCluster is about.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionType {
    /// Reachability of the peer's API server.
    #[serde(rename = "APIServerStatus")]
    ApiServerStatus,
    /// State of the network tunnel towards the peer.
    NetworkConnectionStatus,
    /// State of the local gateway server serving the peer.
    NetworkGatewayServerStatus,
    /// State of the local gateway client connecting to the peer.
    NetworkGatewayClientStatus,
    /// Whether a gateway (server or client) exists for the peer.
    NetworkGatewayPresence,
    /// Whether the network configuration of the peer is known.
    NetworkConfigurationStatus,
    /// State of the control-plane identity used to reach the peer.
    AuthIdentityControlPlaneStatus,
    /// State of the tenant the peer owns in the local cluster.
    AuthTenantStatus,
    /// State of the virtual kubelets targeting the peer.
    OffloadingVirtualNodeStatus,
    /// State of the virtual nodes standing for the peer.
    OffloadingNodeStatus,
}

/// Value of a condition of a ForeignCluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionStatusType {
    /// The condition does not apply.
    #[default]
    None,
    /// The condition is being brought about.
    Pending,
    /// The condition has been reached.
    Established,
    /// Reaching the condition failed.
    Error,
    /// The component is ready.
    Ready,
    /// The component is not ready.
    NotReady,
    /// Some instances of the component are not ready.
    SomeNotReady,
}

/// A condition reported in the status of a ForeignCluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What the condition is about.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Current value of the condition.
    #[serde(default)]
    pub status: ConditionStatusType,
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

/// Names of the namespaces dedicated to a peering in the two clusters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TenantNamespaceType {
    /// Tenant namespace in the local cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// Tenant namespace in the peer cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}
