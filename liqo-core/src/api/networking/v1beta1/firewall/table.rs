//! nftables tables.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Chain;

/// Address family of an nftables table.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TableFamily {
    /// IPv4 and IPv6 (`inet`).
    #[serde(rename = "INET")]
    Inet,
    /// IPv4 (`ip`).
    #[serde(rename = "IPV4")]
    Ipv4,
    /// IPv6 (`ip6`).
    #[serde(rename = "IPV6")]
    Ipv6,
    /// ARP (`arp`).
    #[serde(rename = "ARP")]
    Arp,
    /// Ingress of a device (`netdev`).
    #[serde(rename = "NETDEV")]
    Netdev,
    /// Bridged traffic (`bridge`).
    #[serde(rename = "BRIDGE")]
    Bridge,
}

/// An nftables table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Table {
    /// Name of the table.
    pub name: String,
    /// Chains of the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<Chain>,
    /// Address family of the table.
    pub family: TableFamily,
}
