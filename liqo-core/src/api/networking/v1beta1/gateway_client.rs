//! The `GatewayClient` kind: a gateway connecting to the gateway server of a peer.

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EndpointStatus, InternalGatewayEndpoint};

/// Desired state of a GatewayClient.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "GatewayClient",
    plural = "gatewayclients",
    shortname = "gwc",
    shortname = "gwclient",
    category = "liqo",
    namespaced,
    status = "GatewayClientStatus",
    derive = "PartialEq",
    doc = "A gateway of the local cluster that connects to the gateway server of a peer; rendered from a client template (WireGuard by default).",
    printcolumn = r#"{"name":"Template Kind","type":"string","priority":1,"jsonPath":".spec.clientTemplateRef.kind"}"#,
    printcolumn = r#"{"name":"Template Name","type":"string","jsonPath":".spec.clientTemplateRef.name"}"#,
    printcolumn = r#"{"name":"Template Namespace","type":"string","priority":1,"jsonPath":".spec.clientTemplateRef.namespace"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".spec.endpoint.addresses[*]"}"#,
    printcolumn = r#"{"name":"Port","type":"string","jsonPath":".spec.endpoint.port"}"#,
    printcolumn = r#"{"name":"Protocol","type":"string","priority":1,"jsonPath":".spec.endpoint.protocol"}"#,
    printcolumn = r#"{"name":"MTU","type":"integer","priority":1,"jsonPath":".spec.mtu"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClientSpec {
    /// Template the client is rendered from (for example a WgGatewayClientTemplate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_template_ref: Option<ObjectReference>,
    /// MTU of the tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i32>,
    /// Endpoint of the peer's gateway server to connect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointStatus>,
    /// Secret with the tunnel configuration (keys); generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// Observed state of a GatewayClient.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClientStatus {
    /// The object rendered from the template (for example a WgGatewayClient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<ObjectReference>,
    /// Secret with the tunnel configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectReference>,
    /// Address of the gateway on the internal network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<InternalGatewayEndpoint>,
}
