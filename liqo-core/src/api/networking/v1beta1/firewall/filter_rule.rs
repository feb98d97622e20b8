//! Filter rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Match;

/// What a filter rule does to the packets it matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterAction {
    /// Set the conntrack mark of the connection to `value`.
    #[serde(rename = "ctmark")]
    CtMark,
    /// Copy the conntrack mark into the packet mark.
    #[serde(rename = "metamarkfromctmark")]
    SetMetaMarkFromCtMark,
    /// Clamp the TCP MSS to the path MTU.
    #[serde(rename = "tcpmssclamp")]
    TcpMssClamp,
    /// Accept the packet.
    Accept,
    /// Drop the packet.
    Drop,
    /// Reject the packet with an error response.
    Reject,
    /// Exempt the packet from connection tracking.
    Notrack,
}

/// A rule of a filter chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterRule {
    /// Name of the rule (kept as the nftables rule comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the rule counts the packets it matches.
    #[serde(default = "crate::api::schema::default_true")]
    pub counter: bool,
    /// Packet matches, all of which must hold.
    #[serde(rename = "match")]
    pub match_: Vec<Match>,
    /// What to do with matching packets.
    pub action: FilterAction,
    /// Argument of the action (for example the mark of `ctmark`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
