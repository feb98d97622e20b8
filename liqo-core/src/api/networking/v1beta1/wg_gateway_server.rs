//! The `WgGatewayServer` kind: a WireGuard gateway server.

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DeploymentTemplate, EndpointStatus, InternalGatewayEndpoint, Metrics, ServiceTemplate,
};

/// Desired state of a WgGatewayServer.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayServer",
    plural = "wggatewayservers",
    shortname = "wgs",
    shortname = "wggs",
    category = "liqo",
    namespaced,
    status = "WgGatewayServerStatus",
    derive = "PartialEq",
    doc = "A WireGuard gateway server: the Deployment running it and the Service exposing it to the peer's WireGuard client."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayServerSpec {
    /// Service exposing the server.
    pub service: ServiceTemplate,
    /// Deployment running the server.
    pub deployment: DeploymentTemplate,
    /// Metrics of the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Secret with the WireGuard keys; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// Observed state of a WgGatewayServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayServerStatus {
    /// Secret with the WireGuard keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectReference>,
    /// Where the peer reaches the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointStatus>,
    /// Address of the gateway on the internal network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<InternalGatewayEndpoint>,
}
