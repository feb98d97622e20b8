//! The `Network` kind: a CIDR the IPAM must reserve (and possibly remap).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::networking::v1beta1::Cidr;

/// The CIDR wanted.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ipam.liqo.io",
    version = "v1alpha1",
    kind = "Network",
    plural = "networks",
    shortname = "net",
    category = "liqo",
    namespaced,
    status = "NetworkStatus",
    derive = "PartialEq",
    doc = "A CIDR to reserve in the IPAM; when it overlaps with one already in use, the status holds the CIDR it was remapped to.",
    printcolumn = r#"{"name":"Desired CIDR","type":"string","jsonPath":".spec.cidr"}"#,
    printcolumn = r#"{"name":"Remapped CIDR","type":"string","jsonPath":".status.cidr"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// The CIDR wanted; it cannot change once set.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "cidr cannot be changed once set"}
    ]))]
    pub cidr: Cidr,
    /// How many addresses, from the first one, are reserved and never allocated; it cannot
    /// change once set.
    #[serde(default)]
    #[schemars(
        schema_with = "crate::api::schema::uint32",
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "preAllocated cannot be changed once set"}
        ])
    )]
    pub pre_allocated: u32,
}

/// Observed state of a Network.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NetworkStatus {
    /// The CIDR actually reserved (the remapped one if `spec.cidr` was already in use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
    /// Conditions reported by the liqo-rs IPAM controller: `Ready` (with reason `Allocated`,
    /// `Remapped` or the error that prevents the allocation). An addition to upstream's API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
