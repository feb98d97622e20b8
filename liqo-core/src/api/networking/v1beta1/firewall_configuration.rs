//! The `FirewallConfiguration` kind: an nftables table to install on hosts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConditionStatus;
use super::firewall::Table;

/// The nftables table to install.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "FirewallConfiguration",
    plural = "firewallconfigurations",
    shortname = "fw",
    shortname = "fwconfig",
    shortname = "fwcfg",
    category = "liqo",
    namespaced,
    status = "FirewallConfigurationStatus",
    derive = "PartialEq",
    doc = "An nftables table (chains and NAT or filter rules) that the gateway or fabric agents selected by the object's labels install on their host.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct FirewallConfigurationSpec {
    /// The table.
    pub table: Table,
}

/// Outcome of applying a configuration on a host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum FirewallConfigurationStatusConditionType {
    /// The configuration is installed.
    Applied,
    /// Installing the configuration failed.
    Error,
}

/// Outcome of applying a FirewallConfiguration on one host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirewallConfigurationStatusCondition {
    /// Host (node or gateway) that applied the configuration.
    pub host: String,
    /// What the condition reports.
    #[serde(rename = "type")]
    pub type_: FirewallConfigurationStatusConditionType,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Observed state of a FirewallConfiguration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FirewallConfigurationStatus {
    /// One condition per host the configuration applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FirewallConfigurationStatusCondition>,
}
