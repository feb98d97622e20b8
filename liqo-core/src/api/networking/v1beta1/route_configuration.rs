//! The `RouteConfiguration` kind: policy-routing rules and routes to install on hosts.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cidr, ConditionStatus, IpAddress};

/// A routing table to install.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "RouteConfiguration",
    plural = "routeconfigurations",
    shortname = "rcnf",
    shortname = "rcnfg",
    shortname = "rcfg",
    shortname = "routecfg",
    category = "liqo",
    namespaced,
    status = "RouteConfigurationStatus",
    derive = "PartialEq",
    doc = "A routing table, with its policy-routing rules and routes, that the gateway or fabric agents selected by the object's labels install on their host.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct RouteConfigurationSpec {
    /// The table to install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<RoutingTable>,
}

/// A routing table and the rules that send traffic to it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutingTable {
    /// Name of the table.
    pub name: String,
    /// Rules selecting the traffic that uses the table (at least one).
    #[schemars(length(min = 1))]
    pub rules: Vec<RoutingRule>,
    /// Object this table was generated for, free for the producer to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

/// A policy-routing rule and the routes of the table it points to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutingRule {
    /// Destination network matched by the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Cidr>,
    /// Source network matched by the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<Cidr>,
    /// Input interface matched by the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// Output interface matched by the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    /// Firewall mark matched by the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<i64>,
    /// Priority of the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Routes installed in the table for this rule.
    pub routes: Vec<Route>,
    /// Object this rule was generated for, free for the producer to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

/// A route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Destination network.
    pub dst: Cidr,
    /// Preferred source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddress>,
    /// Next hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddress>,
    /// Output device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Whether the next hop is taken as directly reachable on the device (`onlink` flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onlink: Option<bool>,
    /// Scope of the route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<RouteScope>,
    /// Object this route was generated for, free for the producer to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

/// Scope of a route.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteScope {
    /// Valid everywhere.
    Global,
    /// Valid on the link only.
    Link,
    /// Valid on the host only.
    Host,
    /// Valid within the site.
    Site,
    /// The destination does not exist.
    Nowhere,
}

/// Outcome of applying a configuration on a host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RouteConfigurationStatusConditionType {
    /// The configuration is installed.
    Applied,
    /// Installing the configuration failed.
    Error,
}

/// Outcome of applying a RouteConfiguration on one host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfigurationStatusCondition {
    /// Host (node or gateway) that applied the configuration.
    pub host: String,
    /// What the condition reports.
    #[serde(rename = "type")]
    pub type_: RouteConfigurationStatusConditionType,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Observed state of a RouteConfiguration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RouteConfigurationStatus {
    /// One condition per host the configuration applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RouteConfigurationStatusCondition>,
}
