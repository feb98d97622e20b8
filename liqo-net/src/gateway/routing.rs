//! The gateway's policy routing: the peer's real CIDRs go into the tunnel through a routing
//! table of the gateway's own, selected by `ip rule`s in a priority range the gateway owns.
//!
//! Remote CIDRs may collide with local ones (both clusters use `10.0.0.0/16`): after the
//! remapping DNAT, a packet for the peer carries the peer's *real* address, so the main
//! table cannot tell it from a local pod. The rules therefore send traffic arriving from the
//! tunnel or generated locally to `main` first, and everything else bound for a remote real
//! CIDR to the gateway's table, whose routes point at the peer's tunnel address.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::{Error, Result, sys};

/// First priority of the rules the gateway owns; it owns `[RULE_PRIORITY, RULE_PRIORITY + 100)`.
pub const RULE_PRIORITY: u32 = 1900;
/// Number of priorities owned starting at [`RULE_PRIORITY`].
const OWNED_PRIORITIES: u32 = 100;
/// The kernel's main table.
const MAIN_TABLE: u32 = 254;

/// One `ip rule` as the gateway manages it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// Rule priority.
    pub priority: u32,
    /// Incoming interface to match (`lo` matches locally generated packets).
    pub iif: Option<String>,
    /// Destination prefix to match.
    pub dst: Option<IpNetwork>,
    /// Table to look up.
    pub table: u32,
}

impl Rule {
    /// The `ip rule add|del` arguments after the verb.
    fn args(&self) -> Vec<String> {
        let mut args = vec!["priority".to_owned(), self.priority.to_string()];
        if let Some(iif) = &self.iif {
            args.extend(["iif".to_owned(), iif.clone()]);
        }
        if let Some(dst) = &self.dst {
            args.extend(["to".to_owned(), dst.to_string()]);
        }
        args.extend(["table".to_owned(), self.table.to_string()]);
        args
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.args().join(" "))
    }
}

/// What the gateway's routing must look like: pure data, planned from the configuration.
///
/// ```
/// use liqo_net::gateway::routing::RoutingPlan;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let plan = RoutingPlan::new(
///     "liqo-gw-milan",
///     "liqo-tunnel",
///     "169.254.18.2".parse()?,
///     ["10.0.0.0/16".parse()?, "10.70.0.0/16".parse()?],
/// );
/// let rules: Vec<String> = plan.rules().iter().map(ToString::to_string).collect();
/// assert_eq!(rules[0], "priority 1900 iif liqo-tunnel table 254");
/// assert_eq!(rules[1], "priority 1901 iif lo table 254");
/// assert_eq!(rules[2], format!("priority 1910 to 10.0.0.0/16 table {}", plan.table_id()));
/// assert_eq!(plan.routes().len(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingPlan {
    table_name: String,
    table_id: u32,
    tunnel: String,
    peer: IpAddr,
    destinations: BTreeSet<IpNetwork>,
}

impl RoutingPlan {
    /// The plan for a table called `table_name` (its id is [`sys::table_id`] of the name)
    /// sending `destinations` (the peer's real CIDRs) to `peer` (the peer's tunnel address)
    /// over `tunnel`.
    pub fn new(
        table_name: &str,
        tunnel: &str,
        peer: IpAddr,
        destinations: impl IntoIterator<Item = IpNetwork>,
    ) -> Self {
        Self {
            table_name: table_name.to_owned(),
            table_id: sys::table_id(table_name),
            tunnel: tunnel.to_owned(),
            peer,
            destinations: destinations.into_iter().map(canonical).collect(),
        }
    }

    /// The routing table id.
    #[must_use]
    pub fn table_id(&self) -> u32 {
        self.table_id
    }

    /// The routing table name.
    #[must_use]
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// The rules, in priority order.
    #[must_use]
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = vec![
            Rule {
                priority: RULE_PRIORITY,
                iif: Some(self.tunnel.clone()),
                dst: None,
                table: MAIN_TABLE,
            },
            Rule {
                priority: RULE_PRIORITY + 1,
                iif: Some("lo".to_owned()),
                dst: None,
                table: MAIN_TABLE,
            },
        ];
        rules.extend(self.destinations.iter().map(|dst| Rule {
            priority: RULE_PRIORITY + 10,
            iif: None,
            dst: Some(*dst),
            table: self.table_id,
        }));
        rules
    }

    /// The destinations routed into the tunnel.
    #[must_use]
    pub fn routes(&self) -> Vec<IpNetwork> {
        self.destinations.iter().copied().collect()
    }

    /// Brings the rules and the table to this plan: missing rules and routes are added
    /// before stale ones are removed, so traffic that stays routed never loses its path.
    ///
    /// # Errors
    ///
    /// [`Error::Command`] when `ip` fails (e.g. the tunnel link does not exist).
    pub async fn apply(&self) -> Result<()> {
        let current = current_rules().await?;
        let desired: BTreeSet<Rule> = self.rules().into_iter().collect();
        for rule in desired.difference(&current) {
            ip_rule("add", rule).await?;
        }
        for rule in current.difference(&desired) {
            ip_rule("del", rule).await?;
        }
        let table = self.table_id.to_string();
        let peer = self.peer.to_string();
        for dst in &self.destinations {
            let dst = dst.to_string();
            sys::ip(&[
                "route",
                "replace",
                &dst,
                "via",
                &peer,
                "dev",
                &self.tunnel,
                "table",
                &table,
            ])
            .await?;
        }
        for stale in table_routes(self.table_id).await? {
            if !self.destinations.contains(&stale) {
                let stale = stale.to_string();
                sys::ip(&["route", "del", &stale, "table", &table]).await?;
            }
        }
        Ok(())
    }

    /// Whether the rules and routes are all in place (false after someone deleted a rule or
    /// the tunnel link took its routes with it).
    pub async fn in_place(&self) -> bool {
        let Ok(current) = current_rules().await else {
            return false;
        };
        let desired: BTreeSet<Rule> = self.rules().into_iter().collect();
        if current != desired {
            return false;
        }
        match table_routes(self.table_id).await {
            Ok(routes) => routes == self.destinations,
            Err(_) => false,
        }
    }
}

/// Removes every rule in the gateway's priority range and flushes the table `table_name`;
/// nothing else is touched. Succeeds when there is nothing to remove.
///
/// # Errors
///
/// [`Error::Command`] when `ip` fails for another reason than absence.
pub async fn remove(table_name: &str) -> Result<()> {
    for rule in current_rules().await? {
        ip_rule("del", &rule).await?;
    }
    let table = sys::table_id(table_name).to_string();
    for route in table_routes(sys::table_id(table_name)).await? {
        let route = route.to_string();
        sys::ip(&["route", "del", &route, "table", &table]).await?;
    }
    Ok(())
}

/// Whether any rule of the gateway's range is present.
pub async fn any_rule_present() -> bool {
    current_rules().await.is_ok_and(|r| !r.is_empty())
}

async fn ip_rule(verb: &str, rule: &Rule) -> Result<()> {
    let args = rule.args();
    let mut all = vec!["-4", "rule", verb];
    all.extend(args.iter().map(String::as_str));
    sys::ip(&all).await.map(drop)
}

/// An `ip -j rule` entry (only the fields the gateway uses).
#[derive(Deserialize)]
struct JsonRule {
    priority: Option<u32>,
    iif: Option<String>,
    dst: Option<String>,
    dstlen: Option<u8>,
    table: Option<String>,
}

/// The rules in the owned priority range.
async fn current_rules() -> Result<BTreeSet<Rule>> {
    let out = sys::ip(&["-j", "-4", "rule", "list"]).await?;
    parse_rules(&out)
}

fn parse_rules(json: &str) -> Result<BTreeSet<Rule>> {
    let rules: Vec<JsonRule> = serde_json::from_str(json).map_err(|e| Error::Command {
        command: "ip -j -4 rule list".to_owned(),
        message: format!("unexpected output: {e}"),
    })?;
    let mut owned = BTreeSet::new();
    for r in rules {
        let Some(priority) = r.priority else { continue };
        if !(RULE_PRIORITY..RULE_PRIORITY + OWNED_PRIORITIES).contains(&priority) {
            continue;
        }
        let table = match r.table.as_deref() {
            Some("main") | None => MAIN_TABLE,
            Some(t) => t.parse().map_err(|_| Error::Command {
                command: "ip -j -4 rule list".to_owned(),
                message: format!("rule at priority {priority} uses unknown table {t:?}"),
            })?,
        };
        let dst =
            match r.dst.as_deref() {
                None | Some("all") => None,
                Some(addr) => {
                    let len = r.dstlen.unwrap_or(32);
                    Some(format!("{addr}/{len}").parse::<IpNetwork>().map_err(|e| {
                        Error::Command {
                            command: "ip -j -4 rule list".to_owned(),
                            message: format!("bad destination {addr}/{len}: {e}"),
                        }
                    })?)
                }
            };
        owned.insert(Rule {
            priority,
            iif: r.iif,
            dst,
            table,
        });
    }
    Ok(owned)
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
}

/// The destinations of the routes in table `id` (empty when the table does not exist).
async fn table_routes(id: u32) -> Result<BTreeSet<IpNetwork>> {
    let table = id.to_string();
    let out = match sys::ip(&["-j", "-4", "route", "show", "table", &table]).await {
        Ok(out) => out,
        // A table without routes does not exist for the kernel.
        Err(Error::Command { message, .. }) if message.contains("does not exist") => {
            return Ok(BTreeSet::new());
        }
        Err(e) => return Err(e),
    };
    let routes: Vec<JsonRoute> = if out.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&out).map_err(|e| Error::Command {
            command: format!("ip -j -4 route show table {table}"),
            message: format!("unexpected output: {e}"),
        })?
    };
    Ok(routes
        .into_iter()
        .filter_map(|r| {
            if r.dst.contains('/') {
                r.dst.parse().ok()
            } else {
                format!("{}/32", r.dst).parse().ok()
            }
        })
        .collect())
}

/// The prefix with host bits cleared, as the kernel stores it.
fn canonical(cidr: IpNetwork) -> IpNetwork {
    IpNetwork::new(cidr.network(), cidr.prefix()).unwrap_or(cidr)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_only_owned_rules() {
        let json = r#"[
            {"priority":0,"src":"all","table":"local"},
            {"priority":1900,"src":"all","iif":"liqo-tunnel","table":"main"},
            {"priority":1901,"src":"all","iif":"lo","table":"main"},
            {"priority":1910,"src":"all","dst":"10.0.0.0","dstlen":16,"table":"1234"},
            {"priority":1910,"src":"all","dst":"10.70.0.0","dstlen":16,"table":"1234"},
            {"priority":32766,"src":"all","table":"main"}
        ]"#;
        let rules = parse_rules(json).unwrap();
        let plan = RoutingPlan {
            table_name: "t".into(),
            table_id: 1234,
            tunnel: "liqo-tunnel".into(),
            peer: "169.254.18.1".parse().unwrap(),
            destinations: [
                "10.0.0.0/16".parse().unwrap(),
                "10.70.0.0/16".parse().unwrap(),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(rules, plan.rules().into_iter().collect());
    }

    #[test]
    fn unknown_table_name_is_an_error() {
        let json = r#"[{"priority":1910,"dst":"10.0.0.0","dstlen":16,"table":"custom"}]"#;
        assert!(parse_rules(json).is_err());
    }

    #[test]
    fn destinations_are_canonical_and_deduplicated() {
        let plan = RoutingPlan::new(
            "x",
            "liqo-tunnel",
            "169.254.18.2".parse().unwrap(),
            [
                "10.0.1.0/16".parse().unwrap(),
                "10.0.0.0/16".parse().unwrap(),
            ],
        );
        assert_eq!(plan.routes(), vec!["10.0.0.0/16".parse().unwrap()]);
        assert!(plan.table_id() >= 256);
    }
}
