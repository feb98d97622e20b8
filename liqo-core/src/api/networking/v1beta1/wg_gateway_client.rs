//! The `WgGatewayClient` kind: a WireGuard gateway client.

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DeploymentTemplate, InternalGatewayEndpoint, Metrics};

/// Desired state of a WgGatewayClient.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayClient",
    plural = "wggatewayclients",
    shortname = "wgc",
    shortname = "wggc",
    category = "liqo",
    namespaced,
    status = "WgGatewayClientStatus",
    derive = "PartialEq",
    doc = "A WireGuard gateway client: the Deployment that connects to the WireGuard server of a peer."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayClientSpec {
    /// Deployment running the client.
    pub deployment: DeploymentTemplate,
    /// Metrics of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Secret with the WireGuard keys; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// Observed state of a WgGatewayClient.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayClientStatus {
    /// Secret with the WireGuard keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectReference>,
    /// Address of the gateway on the internal network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<InternalGatewayEndpoint>,
}
