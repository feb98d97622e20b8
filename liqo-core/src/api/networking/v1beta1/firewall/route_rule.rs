//! Route rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A rule of a route chain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RouteRule {
    /// Name of the rule (kept as the nftables rule comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
