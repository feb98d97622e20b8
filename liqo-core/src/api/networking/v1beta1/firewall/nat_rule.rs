//! NAT rules.

use k8s_openapi::api::core::v1::ObjectReference;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Match;

/// Kind of address translation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NatType {
    /// Rewrite the destination address.
    Dnat,
    /// Rewrite the source address.
    Snat,
    /// Rewrite the source address with the address of the output interface.
    Masquerade,
}

/// A rule of a NAT chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatRule {
    /// Name of the rule (kept as the nftables rule comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Packet matches, all of which must hold.
    #[serde(rename = "match")]
    pub match_: Vec<Match>,
    /// Kind of translation.
    pub nat_type: NatType,
    /// Address (or network) to translate to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Object this rule was generated for, free for the producer to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}
