//! The nftables model embedded in a
//! [`FirewallConfiguration`](super::FirewallConfiguration): a [`Table`] of [`Chain`]s, each
//! holding one kind of rules ([`NatRule`], [`FilterRule`] or [`RouteRule`]) whose [`Match`]es are
//! AND-ed.

mod chain;
mod common;
mod filter_rule;
mod matching;
mod nat_rule;
mod route_rule;
mod rules;
mod table;

pub use chain::{Chain, ChainHook, ChainPolicy, ChainType, priority};
pub use common::{IpValueType, PortValueType};
pub use filter_rule::{FilterAction, FilterRule};
pub use matching::{
    L4Proto, Match, MatchDev, MatchDevPosition, MatchIp, MatchOperation, MatchPort, MatchPosition,
    MatchProto,
};
pub use nat_rule::{NatRule, NatType};
pub use route_rule::RouteRule;
pub use rules::RulesSet;
pub use table::{Table, TableFamily};
