//! The `InternalNode` kind: one node of the cluster, as a member of the internal overlay.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::IpAddress;

/// How the gateways reach one node.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "InternalNode",
    plural = "internalnodes",
    shortname = "in",
    shortname = "inode",
    category = "liqo",
    status = "InternalNodeStatus",
    derive = "PartialEq",
    doc = "A node of the local cluster as a member of the internal overlay (one per node, cluster-scoped).",
    printcolumn = r#"{"name":"Node IP Local","type":"string","jsonPath":".status.nodeIP.local"}"#,
    printcolumn = r#"{"name":"Node IP Remote","type":"string","jsonPath":".status.nodeIP.remote"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct InternalNodeSpec {
    /// The overlay interfaces on gateways and node.
    pub interface: InternalNodeSpecInterface,
}

/// Overlay interfaces of an InternalNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalNodeSpecInterface {
    /// Interface created on every gateway towards the node.
    pub gateway: InternalNodeSpecInterfaceGateway,
    /// Interface of the node.
    pub node: InternalNodeSpecInterfaceNode,
}

/// Gateway side of an InternalNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalNodeSpecInterfaceGateway {
    /// Name of the interface created on the gateways.
    pub name: String,
}

/// Node side of an InternalNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalNodeSpecInterfaceNode {
    /// IP of the interface created on the node.
    pub ip: IpAddress,
}

/// Observed state of an InternalNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InternalNodeStatus {
    /// Source addresses host-network pods of the node use.
    #[serde(rename = "nodeIP")]
    pub node_ip: InternalNodeStatusNodeIp,
}

/// Source addresses a host-network pod of a node uses to reach pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalNodeStatusNodeIp {
    /// Source address towards pods on the same node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<IpAddress>,
    /// Source address towards pods on other nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<IpAddress>,
}
