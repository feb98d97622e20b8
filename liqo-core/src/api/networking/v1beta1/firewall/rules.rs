//! The rules of a chain.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FilterRule, NatRule, RouteRule};

/// The rules of a chain; only one of the lists may be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("maxProperties" = 1))]
pub struct RulesSet {
    /// NAT rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat_rules: Vec<NatRule>,
    /// Filter rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_rules: Vec<FilterRule>,
    /// Route rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_rules: Vec<RouteRule>,
}
