//! The `InternalFabric` kind: the overlay between the nodes of the cluster and one gateway.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cidr, IpAddress};

/// How the nodes reach one gateway (and the remote CIDRs behind it).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "InternalFabric",
    plural = "internalfabrics",
    shortname = "if",
    shortname = "ifabric",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "The internal overlay linking every node of the local cluster to the gateway of one peering, and the remote CIDRs routed through it.",
    printcolumn = r#"{"name":"Gateway IP","type":"string","jsonPath":".spec.gatewayIP"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricSpec {
    /// MTU of the overlay interfaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i32>,
    /// Remote CIDRs routed through the gateway.
    #[serde(rename = "remoteCIDRs", default, skip_serializing_if = "Vec::is_empty")]
    pub remote_cidrs: Vec<Cidr>,
    /// The overlay interfaces on nodes and gateway.
    pub interface: InternalFabricSpecInterface,
    /// IP of the gateway pod.
    #[serde(rename = "gatewayIP")]
    pub gateway_ip: IpAddress,
}

/// Overlay interfaces of an InternalFabric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalFabricSpecInterface {
    /// Interface created on every node towards the gateway.
    pub node: InternalFabricSpecInterfaceNode,
    /// Interface of the gateway.
    pub gateway: InternalFabricSpecInterfaceGateway,
}

/// Node side of an InternalFabric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalFabricSpecInterfaceNode {
    /// Name of the interface created on the nodes.
    pub name: String,
}

/// Gateway side of an InternalFabric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalFabricSpecInterfaceGateway {
    /// IP of the interface created on the gateway.
    pub ip: IpAddress,
}
