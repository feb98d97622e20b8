//! The `ShadowEndpointSlice` kind: a reflected EndpointSlice, as written by the consumer in the
//! provider.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The EndpointSlice to create in the provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "ShadowEndpointSlice",
    plural = "shadowendpointslices",
    shortname = "shes",
    shortname = "sheps",
    shortname = "seps",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "An EndpointSlice reflected by a consumer: the provider creates an EndpointSlice with the same content."
)]
pub struct ShadowEndpointSliceSpec {
    /// Content of the EndpointSlice to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<EndpointSliceTemplate>,
}

/// Content of an EndpointSlice.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceTemplate {
    /// The endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// The ports exposed by every endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
    /// Type of the endpoint addresses (`IPv4`, `IPv6` or `FQDN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_type: Option<String>,
}
