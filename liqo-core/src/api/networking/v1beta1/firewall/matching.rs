//! Packet matches of firewall rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a match compares for equality or inequality.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchOperation {
    /// The packet field equals the value.
    Eq,
    /// The packet field differs from the value.
    Neq,
}

/// Which address or port of the packet a match looks at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchPosition {
    /// The source.
    Src,
    /// The destination.
    Dst,
}

/// Which interface of the packet a match looks at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchDevPosition {
    /// The input interface.
    In,
    /// The output interface.
    Out,
}

/// A transport protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum L4Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Match on an address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MatchIp {
    /// An address, a network (`10.0.0.0/24`) or a range (`10.0.0.1-10.0.0.20`).
    pub value: String,
    /// Source or destination address.
    pub position: MatchPosition,
}

/// Match on a port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MatchPort {
    /// A port or a range (`3000-4000`).
    pub value: String,
    /// Source or destination port.
    pub position: MatchPosition,
}

/// Match on an interface.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MatchDev {
    /// Name of the interface.
    pub value: String,
    /// Input or output interface.
    pub position: MatchDevPosition,
}

/// Match on the transport protocol.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MatchProto {
    /// The protocol.
    pub value: L4Proto,
}

/// A packet match; the criteria that are set must all hold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Match {
    /// Equality or inequality.
    pub op: MatchOperation,
    /// Address criterion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<MatchIp>,
    /// Port criterion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<MatchPort>,
    /// Protocol criterion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<MatchProto>,
    /// Interface criterion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<MatchDev>,
}
