//! The `GeneveTunnel` kind: the Geneve tunnel linking one node to one gateway.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The two ends of the tunnel and its identifier.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "GeneveTunnel",
    plural = "genevetunnels",
    shortname = "gvtn",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "A Geneve tunnel linking an InternalNode to an InternalFabric."
)]
#[serde(rename_all = "camelCase")]
pub struct GeneveTunnelSpec {
    /// Virtual network identifier of the tunnel (only the lower 24 bits are used).
    #[schemars(schema_with = "crate::api::schema::uint32")]
    pub id: u32,
    /// The InternalNode at one end.
    pub internal_node_ref: ObjectReference,
    /// The InternalFabric at the other end.
    pub internal_fabric_ref: ObjectReference,
}
