//! The `IP` kind: an address of a remapping CIDR standing for a local IP.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ServiceTemplate;
use crate::api::networking::v1beta1::{Cidr, IpAddress};

/// The local IP to remap.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ipam.liqo.io",
    version = "v1alpha1",
    kind = "IP",
    root = "Ip",
    plural = "ips",
    category = "liqo",
    namespaced,
    status = "IpStatus",
    derive = "PartialEq",
    doc = "A local IP that peers must be able to reach: the IPAM allocates an address of a remapping network (the external CIDR by default) standing for it.",
    printcolumn = r#"{"name":"Local IP","type":"string","jsonPath":".spec.ip"}"#,
    printcolumn = r#"{"name":"Remapped IP","type":"string","jsonPath":".status.ip"}"#,
    printcolumn = r#"{"name":"Remapped IP CIDR","type":"string","jsonPath":".status.cidr"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IpSpec {
    /// The local IP; it cannot change once set.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "ip cannot be changed once set"}
    ]))]
    pub ip: IpAddress,
    /// Network to allocate the address from (the external CIDR when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_ref: Option<ObjectReference>,
    /// Service (and EndpointSlice) to create in front of the IP; none when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_template: Option<ServiceTemplate>,
    /// Whether traffic from the IP is masqueraded on the nodes (off when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masquerade: Option<bool>,
}

/// Observed state of an IP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IpStatus {
    /// The allocated (remapped) address; it cannot change once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "ip cannot be changed once set"}
    ]))]
    pub ip: Option<IpAddress>,
    /// The network the address was allocated from; it cannot change once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "cidr cannot be changed once set"}
    ]))]
    pub cidr: Option<Cidr>,
    /// Conditions reported by the liqo-rs IPAM controller: `Ready` (with reason `Allocated`,
    /// `Remapped` or the error that prevents the allocation). An addition to upstream's API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
