//! The `GatewayServer` kind: a gateway accepting the tunnel from a peer.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EndpointStatus, InternalGatewayEndpoint};

/// Desired state of a GatewayServer.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "GatewayServer",
    plural = "gatewayservers",
    shortname = "gws",
    shortname = "gwserver",
    category = "liqo",
    namespaced,
    status = "GatewayServerStatus",
    derive = "PartialEq",
    doc = "A gateway of the local cluster that the gateway client of a peer connects to; rendered from a server template (WireGuard by default).",
    printcolumn = r#"{"name":"Template Kind","type":"string","priority":1,"jsonPath":".spec.serverTemplateRef.kind"}"#,
    printcolumn = r#"{"name":"Template Name","type":"string","jsonPath":".spec.serverTemplateRef.name"}"#,
    printcolumn = r#"{"name":"Template Namespace","type":"string","priority":1,"jsonPath":".spec.serverTemplateRef.namespace"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".status.endpoint.addresses[*]"}"#,
    printcolumn = r#"{"name":"Port","type":"string","jsonPath":".status.endpoint.port"}"#,
    printcolumn = r#"{"name":"Protocol","type":"string","priority":1,"jsonPath":".status.endpoint.protocol"}"#,
    printcolumn = r#"{"name":"MTU","type":"integer","priority":1,"jsonPath":".spec.mtu"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServerSpec {
    /// Template the server is rendered from (for example a WgGatewayServerTemplate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_template_ref: Option<ObjectReference>,
    /// MTU of the tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i32>,
    /// How the server is exposed to the peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Secret with the tunnel configuration (keys); generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Annotations of the Service exposing the server (they override the template's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    /// Labels of the Service exposing the server (they override the template's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_labels: BTreeMap<String, String>,
}

/// Type of the Service exposing a gateway server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Reachable on a port of every node.
    NodePort,
    /// Reachable through a cloud load balancer.
    LoadBalancer,
    /// An alias of an external name.
    ExternalName,
}

/// How a gateway server is exposed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.port) && has(self.ports))", "message": "set either port or ports, not both"},
    {"rule": "!(has(self.nodePort) && has(self.nodePorts))", "message": "set either nodePort or nodePorts, not both"},
    {"rule": "has(self.port) || (has(self.ports) && size(self.ports) > 0)", "message": "port or ports is required"},
    {"rule": "!(has(self.ports)) || self.ports.all(p, self.ports.filter(q, q == p).size() == 1)", "message": "ports must not repeat"},
    {"rule": "!(has(self.nodePorts)) || self.nodePorts.all(p, self.nodePorts.filter(q, q == p).size() == 1)", "message": "nodePorts must not repeat"},
]))]
pub struct Endpoint {
    /// Single port of the server (deprecated in favour of `ports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Ports of the server (at most 64, no repetitions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ports: Vec<i32>,
    /// Type of the Service exposing the server.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Fixed node port of the Service (deprecated in favour of `nodePorts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
    /// Fixed node ports of the Service (at most 64, no repetitions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub node_ports: Vec<i32>,
    /// Address to request from the load balancer (`LoadBalancer` services only, where the
    /// provider supports it).
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    pub load_balancer_ip: Option<String>,
}

/// Observed state of a GatewayServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServerStatus {
    /// The object rendered from the template (for example a WgGatewayServer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ref: Option<ObjectReference>,
    /// Where the peer reaches the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointStatus>,
    /// Secret with the tunnel configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectReference>,
    /// Address of the gateway on the internal network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<InternalGatewayEndpoint>,
}
