//! nftables base chains.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RulesSet;

/// Purpose of a base chain.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    /// Packet filtering.
    Filter,
    /// Rerouting of locally generated packets.
    Route,
    /// Network address translation.
    Nat,
}

/// Verdict for packets reaching the end of a chain.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChainPolicy {
    /// Drop them.
    Drop,
    /// Accept them.
    Accept,
}

/// Netfilter hook a base chain is attached to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChainHook {
    /// Before the routing decision.
    Prerouting,
    /// Packets for the local host.
    Input,
    /// Packets routed through the host.
    Forward,
    /// Packets sent by the local host.
    Output,
    /// After the routing decision.
    Postrouting,
    /// Ingress of a device (`netdev` and `inet` families).
    Ingress,
}

/// Well-known chain priorities (lower runs first), as defined by netfilter for IPv4.
pub mod priority {
    /// Runs before anything else.
    pub const FIRST: i32 = i32::MIN;
    /// Defragmentation before connection tracking.
    pub const CONNTRACK_DEFRAG: i32 = -400;
    /// The `raw` table.
    pub const RAW: i32 = -300;
    /// SELinux, first pass.
    pub const SELINUX_FIRST: i32 = -225;
    /// Connection tracking.
    pub const CONNTRACK: i32 = -200;
    /// The `mangle` table.
    pub const MANGLE: i32 = -150;
    /// Destination NAT.
    pub const NAT_DEST: i32 = -100;
    /// The `filter` table.
    pub const FILTER: i32 = 0;
    /// The `security` table.
    pub const SECURITY: i32 = 50;
    /// Source NAT.
    pub const NAT_SOURCE: i32 = 100;
    /// SELinux, last pass.
    pub const SELINUX_LAST: i32 = 225;
    /// Connection-tracking helpers.
    pub const CONNTRACK_HELPER: i32 = 300;
    /// Runs after anything else.
    pub const LAST: i32 = i32::MAX;
}

/// An nftables base chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Chain {
    /// Name of the chain.
    pub name: String,
    /// Rules of the chain (of a single kind).
    pub rules: RulesSet,
    /// Purpose of the chain.
    #[serde(rename = "type")]
    pub type_: ChainType,
    /// Verdict for packets reaching the end of the chain.
    pub policy: ChainPolicy,
    /// Hook the chain is attached to.
    pub hook: ChainHook,
    /// Priority of the chain at its hook (see [`priority`] for well-known values).
    #[serde(default)]
    pub priority: i32,
}
