//! Kinds of values found in the `value` of IP and port matches.

use serde::{Deserialize, Serialize};

/// What the `value` of an IP match denotes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum IpValueType {
    /// A single address (`10.0.0.1`).
    Ip,
    /// A network in CIDR notation (`10.0.0.0/24`).
    Subnet,
    /// An inclusive range of addresses (`10.0.0.1-10.0.0.20`).
    Range,
    /// No value.
    Void,
}

/// What the `value` of a port match denotes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum PortValueType {
    /// A single port (`8080`).
    Port,
    /// An inclusive range of ports (`3000-4000`).
    Range,
    /// No value.
    Void,
}
