//! The `Connection` kind: the state of the tunnel between two gateways.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The gateway a Connection belongs to.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "Connection",
    plural = "connections",
    shortname = "conn",
    category = "liqo",
    namespaced,
    status = "ConnectionStatus",
    derive = "PartialEq",
    doc = "State of the tunnel between a local gateway and the gateway of a peer, as seen by the local gateway.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.value"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Latency","type":"string","priority":1,"jsonPath":".status.latency.value"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Whether the local gateway is the server or the client side of the tunnel.
    #[serde(rename = "type")]
    pub type_: ConnectionType,
    /// The local gateway (a GatewayServer or GatewayClient).
    pub gateway_ref: ObjectReference,
}

/// Side of the tunnel the local gateway is on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionType {
    /// The local gateway accepts the connection.
    Server,
    /// The local gateway initiates the connection.
    Client,
}

/// State of a tunnel.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionStatusValue {
    /// The tunnel is up and the peer answers.
    Connected,
    /// The tunnel is being set up.
    Connecting,
    /// The tunnel failed.
    Error,
}

/// Last measured latency of a tunnel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ConnectionLatency {
    /// The latency, as a duration string (for example `1.2ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When it was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Time>,
}

/// Observed state of a Connection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ConnectionStatus {
    /// State of the tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ConnectionStatusValue>,
    /// Latency towards the peer gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<ConnectionLatency>,
}
