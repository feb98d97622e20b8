//! Types shared by several kinds of `networking.liqo.io/v1beta1` (and by `ipam.liqo.io`).

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub use crate::api::ConditionStatus;

/// Declares a string newtype whose CRD schema is a string of the given `format`.
macro_rules! formatted_string {
    ($(#[$meta:meta])* $name:ident, $format:literal) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "format": $format,
                })
            }
        }
    };
}

formatted_string!(
    /// An IP network in CIDR notation (for example `10.0.0.0/16`); the API server checks the
    /// syntax.
    ///
    /// ```
    /// use liqo_core::api::networking::v1beta1::Cidr;
    ///
    /// let cidr = Cidr::from("10.70.0.0/16");
    /// assert_eq!(cidr.to_string(), "10.70.0.0/16");
    /// ```
    Cidr,
    "cidr"
);

formatted_string!(
    /// An IPv4 address (for example `10.80.0.1`); the API server checks the syntax.
    ///
    /// ```
    /// use liqo_core::api::networking::v1beta1::IpAddress;
    ///
    /// let ip = IpAddress::from("10.80.0.1");
    /// assert_eq!(ip, "10.80.0.1");
    /// ```
    IpAddress,
    "ipv4"
);

/// Transport protocol of a gateway endpoint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Protocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

/// Where a gateway server can be reached from the other cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.port) && has(self.ports))", "message": "set either port or ports, not both"},
    {"rule": "has(self.port) || (has(self.ports) && size(self.ports) > 0)", "message": "port or ports is required"},
    {"rule": "!(has(self.ports)) || self.ports.all(p, self.ports.filter(q, q == p).size() == 1)", "message": "ports must not repeat"},
]))]
pub struct EndpointStatus {
    /// Addresses (IPs or host names) of the endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Single port of the endpoint (deprecated in favour of `ports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Transport protocol of the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Ports of the endpoint (at most 64, no repetitions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ports: Vec<i32>,
}

/// Address of a gateway inside its own cluster (on the internal overlay).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InternalGatewayEndpoint {
    /// IP of the gateway on the internal network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddress>,
    /// Node the gateway runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// API version and kind of an object (the Go `TypeMeta`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKind {
    /// API version, for example `networking.liqo.io/v1beta1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind, for example `WgGatewayServer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Metadata and spec of a Service to create.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceTemplate {
    /// Labels, annotations and name of the Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<ServiceSpec>,
}

/// Metadata and spec of a Deployment to create.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DeploymentTemplate {
    /// Labels, annotations and name of the Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<DeploymentSpec>,
}

/// Metadata and spec of a Prometheus-operator ServiceMonitor to create.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceMonitorTemplate {
    /// Labels, annotations and name of the ServiceMonitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the ServiceMonitor (`monitoring.coreos.com/v1`), kept as free-form JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "crate::api::schema::preserve_unknown_object")]
    pub spec: serde_json::Value,
}

/// Metrics exposed by a gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Whether metrics are exposed.
    pub enabled: bool,
    /// Service exposing the metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceTemplate>,
    /// ServiceMonitor scraping the metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorTemplate>,
}
