//! The in-cluster overlay: a tunnel from every node to the gateway, and routes for the
//! peers' CIDRs over it.
//!
//! Upstream Liqo joins each node to each gateway pod with a Geneve link (the fabric DaemonSet
//! creates the node end, the gateway the other end) and routes the remote CIDRs through it,
//! each set of routes in a routing table of its own selected by `ip rule`s. Here the link
//! type is a choice, [`OverlayKind`]: VXLAN by default, because many kernels (this project's
//! CI among them) have no `geneve` module; Geneve where it exists.
//!
//! - [`OverlayLink`] describes one node-to-gateway link: both underlay addresses (node IP,
//!   gateway pod IP), both overlay addresses (from the internal CIDR), VNI, port and MTU.
//! - [`OverlaySpec::node`] is the node's end: routes for the **remote CIDRs** via the
//!   gateway's overlay address; [`OverlaySpec::gateway`] is the gateway's end: routes back
//!   to the node's **pod CIDRs** via the node's overlay address.
//! - [`Overlay::ensure`] creates or repairs the link, its address, its routing table and the
//!   rules selecting it (one `to <cidr>` rule per CIDR, and one for the other end's overlay
//!   address), and reports whether it changed anything; [`Overlay::remove`] removes them.
//!   Both are idempotent and meant to be called periodically: they repair what someone
//!   else deleted.
//! - [`cleanup_stale`] removes what a dead process left behind.
//!
//! # Ownership
//!
//! An overlay owns its link (by name: [`interface_name`] builds `liqo.<10 hex>`), its routing
//! table (id [`table_id`](crate::sys::table_id) of the [table name](OverlaySpec::table_name),
//! as upstream derives it) and the rules that point to that table. Its routes and rules
//! carry the routing protocol number [`RT_PROTOCOL`], which is how [`cleanup_stale`] tells
//! them from anybody else's. Nothing else is ever modified: not the main table, not foreign
//! rules, not other links.
//!
//! Everything runs `ip` through [`tokio::process`]; [`Overlay::in_netns`] works in a named
//! network namespace instead of the process's (`ip -n`).
//!
//! # Example
//!
//! ```no_run
//! use liqo_net::overlay::{Overlay, OverlayKind, OverlayLink, OverlaySpec, interface_name};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let link = OverlayLink::new(
//!     OverlayKind::Vxlan,
//!     17,                        // VNI of this (gateway, node) pair
//!     "192.168.1.10".parse()?,   // node IP
//!     "10.42.1.7".parse()?,      // gateway pod IP
//!     "10.80.0.2".parse()?,      // node's overlay address (internal CIDR)
//!     "10.80.0.1".parse()?,      // gateway's overlay address
//! );
//! // On the node: traffic for the peer's (remapped) pod CIDR goes to the gateway.
//! let node = Overlay::new(OverlaySpec::node(
//!     &link,
//!     interface_name("gateway-milan"),
//!     vec!["10.71.0.0/16".parse()?],
//! ))?;
//! node.ensure().await?; // again every few seconds: repairs what was deleted
//! // ... on SIGTERM:
//! node.remove().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnetwork::{IpNetwork, Ipv4Network};
use serde_json::Value;

use crate::tunnel::{DEFAULT_MTU, validate_interface_name};
use crate::{Error, Result};

/// Routing protocol number (`proto`) of every route and rule an [`Overlay`] creates: how
/// [`cleanup_stale`] recognises them. Not assigned in `/etc/iproute2/rt_protos`.
pub const RT_PROTOCOL: u8 = 76;

/// UDP port of the overlay links unless set otherwise (upstream's Geneve port, which also
/// keeps clear of the CNIs' VXLAN ports 4789 and 8472).
pub const DEFAULT_OVERLAY_PORT: u16 = 6091;

/// Prefix of every overlay interface name (upstream's `liqo.`).
pub const INTERFACE_PREFIX: &str = "liqo.";

/// Largest VXLAN or Geneve network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The tunnel type of the overlay.
///
/// Parsed from and displayed as `vxlan` or `geneve`, for a command-line flag.
///
/// ```
/// use liqo_net::overlay::OverlayKind;
///
/// # fn main() -> Result<(), liqo_net::Error> {
/// assert_eq!("geneve".parse::<OverlayKind>()?, OverlayKind::Geneve);
/// assert_eq!(OverlayKind::default().to_string(), "vxlan");
/// assert!("gre".parse::<OverlayKind>().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OverlayKind {
    /// VXLAN (`ip link add ... type vxlan`): in every mainstream kernel.
    #[default]
    Vxlan,
    /// Geneve, as upstream Liqo: needs the kernel's `geneve` module.
    Geneve,
}

impl OverlayKind {
    /// The `ip link` type and flag value: `vxlan` or `geneve`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Vxlan => "vxlan",
            Self::Geneve => "geneve",
        }
    }
}

impl fmt::Display for OverlayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OverlayKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vxlan" => Ok(Self::Vxlan),
            "geneve" => Ok(Self::Geneve),
            _ => Err(Error::InvalidOverlay(format!(
                "unknown overlay type {s:?} (expected vxlan or geneve)"
            ))),
        }
    }
}

/// An overlay interface name, `liqo.` and the first 10 hex digits of the SHA-256 of `seed`
/// (15 bytes, the longest name Linux accepts). Same seed, same name, on every node.
///
/// ```
/// use liqo_net::overlay::interface_name;
///
/// let name = interface_name("gateway-milan");
/// assert!(name.starts_with("liqo.") && name.len() == 15);
/// assert_eq!(name, interface_name("gateway-milan"));
/// assert_ne!(name, interface_name("gateway-naples"));
/// ```
#[must_use]
pub fn interface_name(seed: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let mut name = INTERFACE_PREFIX.to_owned();
    for byte in &digest.as_ref()[..5] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// One node-to-gateway link of the overlay, as both ends see it.
///
/// ```
/// use liqo_net::overlay::{OverlayKind, OverlayLink};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let link = OverlayLink::new(
///     OverlayKind::Vxlan, 17,
///     "192.168.1.10".parse()?, "10.42.1.7".parse()?,
///     "10.80.0.2".parse()?, "10.80.0.1".parse()?,
/// )
/// .with_mtu(1400);
/// assert_eq!((link.port, link.mtu), (6091, 1400));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OverlayLink {
    /// The tunnel type.
    pub kind: OverlayKind,
    /// The network identifier, unique per (gateway, node) pair (24 bits).
    pub vni: u32,
    /// UDP port, the same at both ends (default [`DEFAULT_OVERLAY_PORT`]).
    pub port: u16,
    /// MTU of the overlay interfaces (default [`DEFAULT_MTU`]).
    pub mtu: u32,
    /// The node's address on the underlay (the node IP).
    pub node_underlay: IpAddr,
    /// The gateway's address on the underlay (the gateway pod IP).
    pub gateway_underlay: IpAddr,
    /// The node's overlay address (upstream: `InternalNode.spec.interface.node.ip`).
    pub node_address: Ipv4Addr,
    /// The gateway's overlay address (upstream: `InternalFabric.spec.interface.gateway.ip`).
    pub gateway_address: Ipv4Addr,
}

impl OverlayLink {
    /// A link with the default port and MTU.
    #[must_use]
    pub fn new(
        kind: OverlayKind,
        vni: u32,
        node_underlay: IpAddr,
        gateway_underlay: IpAddr,
        node_address: Ipv4Addr,
        gateway_address: Ipv4Addr,
    ) -> Self {
        Self {
            kind,
            vni,
            port: DEFAULT_OVERLAY_PORT,
            mtu: DEFAULT_MTU,
            node_underlay,
            gateway_underlay,
            node_address,
            gateway_address,
        }
    }

    /// The same link with another UDP port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The same link with another MTU.
    #[must_use]
    pub fn with_mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }
}

/// One end of an overlay link: what [`Overlay`] makes true on this host.
///
/// Build it with [`node`](Self::node) or [`gateway`](Self::gateway); the fields are public
/// for anything else.
///
/// ```
/// use liqo_net::overlay::{OverlayKind, OverlayLink, OverlaySpec};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let link = OverlayLink::new(
///     OverlayKind::Vxlan, 17,
///     "192.168.1.10".parse()?, "10.42.1.7".parse()?,
///     "10.80.0.2".parse()?, "10.80.0.1".parse()?,
/// );
/// let node = OverlaySpec::node(&link, "liqo.0123456789", vec!["10.71.0.0/16".parse()?]);
/// assert_eq!(node.remote_address.to_string(), "10.80.0.1");
/// assert_eq!(node.table_name, "liqo.0123456789-node-gw");
///
/// let gw = OverlaySpec::gateway(&link, "liqo.9876543210", vec!["10.0.1.0/24".parse()?]);
/// assert_eq!(gw.remote_underlay.to_string(), "192.168.1.10");
/// assert_eq!(gw.remote_address.to_string(), "10.80.0.2");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OverlaySpec {
    /// The tunnel type.
    pub kind: OverlayKind,
    /// Name of the interface, at most 15 bytes (see [`interface_name`]).
    pub interface: String,
    /// Network identifier.
    pub vni: u32,
    /// UDP port.
    pub port: u16,
    /// MTU of the interface.
    pub mtu: u32,
    /// This end's underlay address (VXLAN `local`; Geneve has none and picks by route).
    pub local_underlay: IpAddr,
    /// The other end's underlay address (`remote`).
    pub remote_underlay: IpAddr,
    /// This end's overlay address, assigned as a /32.
    pub local_address: Ipv4Addr,
    /// The other end's overlay address: the next hop of [`routes`](Self::routes).
    pub remote_address: Ipv4Addr,
    /// Destinations routed via [`remote_address`](Self::remote_address) (IPv4).
    pub routes: Vec<IpNetwork>,
    /// Name of the routing table; its id is [`table_id`](crate::sys::table_id) of it.
    pub table_name: String,
    /// Priority of the `ip rule`s; `None` lets the kernel choose (just before `main`).
    pub rule_priority: Option<u32>,
}

impl OverlaySpec {
    /// The node's end of `link`: routes for the peers' `remote_cidrs` to the gateway, in the
    /// table `<interface>-node-gw` (upstream's fabric `RouteConfiguration` name).
    #[must_use]
    pub fn node(
        link: &OverlayLink,
        interface: impl Into<String>,
        remote_cidrs: Vec<IpNetwork>,
    ) -> Self {
        let interface = interface.into();
        Self {
            kind: link.kind,
            table_name: format!("{interface}-node-gw"),
            interface,
            vni: link.vni,
            port: link.port,
            mtu: link.mtu,
            local_underlay: link.node_underlay,
            remote_underlay: link.gateway_underlay,
            local_address: link.node_address,
            remote_address: link.gateway_address,
            routes: remote_cidrs,
            rule_priority: None,
        }
    }

    /// The gateway's end of `link`: routes back to the node's `pod_cidrs` via the node's
    /// overlay address, in the table `<interface>-gw-node`.
    #[must_use]
    pub fn gateway(
        link: &OverlayLink,
        interface: impl Into<String>,
        pod_cidrs: Vec<IpNetwork>,
    ) -> Self {
        let interface = interface.into();
        Self {
            kind: link.kind,
            table_name: format!("{interface}-gw-node"),
            interface,
            vni: link.vni,
            port: link.port,
            mtu: link.mtu,
            local_underlay: link.gateway_underlay,
            remote_underlay: link.node_underlay,
            local_address: link.gateway_address,
            remote_address: link.node_address,
            routes: pod_cidrs,
            rule_priority: None,
        }
    }

    /// The same spec with rules at this priority (upstream suggests 101 to 500 next to the
    /// AWS CNI).
    #[must_use]
    pub fn with_rule_priority(mut self, priority: Option<u32>) -> Self {
        self.rule_priority = priority;
        self
    }

    /// Checks what can be checked without touching the system.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInterfaceName`], [`Error::InvalidMtu`], [`Error::UnsupportedFamily`]
    /// for an IPv6 route, or [`Error::InvalidOverlay`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        validate_interface_name(&self.interface)?;
        if !(68..=65_535).contains(&self.mtu) {
            return Err(Error::InvalidMtu { mtu: self.mtu });
        }
        if self.vni > MAX_VNI {
            return Err(Error::InvalidOverlay(format!(
                "network identifier {} does not fit in 24 bits (max {MAX_VNI})",
                self.vni
            )));
        }
        if self.port == 0 {
            return Err(Error::InvalidOverlay(
                "the UDP port must not be 0".to_owned(),
            ));
        }
        if self.local_address == self.remote_address {
            return Err(Error::InvalidOverlay(format!(
                "both ends have the overlay address {}",
                self.local_address
            )));
        }
        if self.local_underlay.is_ipv4() != self.remote_underlay.is_ipv4() {
            return Err(Error::InvalidOverlay(format!(
                "underlay addresses {} and {} are of different families",
                self.local_underlay, self.remote_underlay
            )));
        }
        if let Some(cidr) = self.routes.iter().find(|c| c.is_ipv6()) {
            return Err(Error::UnsupportedFamily {
                cidr: *cidr,
                what: "overlay routes (IPv4 only)",
            });
        }
        if self.table_name.is_empty() {
            return Err(Error::InvalidOverlay("empty routing table name".to_owned()));
        }
        Ok(())
    }

    /// The destinations the rules select: the other end's overlay address and every route.
    fn rule_destinations(&self) -> BTreeSet<IpNetwork> {
        let mut set: BTreeSet<IpNetwork> = self.routes.iter().map(|c| normalize(*c)).collect();
        set.insert(host(self.remote_address));
        set
    }
}

/// One end of the overlay, applied to the network namespace of the process (or of
/// [`in_netns`](Self::in_netns)).
///
/// See the [module documentation](self) for an example.
#[derive(Clone, Debug)]
pub struct Overlay {
    spec: OverlaySpec,
    table: u32,
    netns: Option<String>,
}

impl Overlay {
    /// An overlay for `spec`, after [`OverlaySpec::validate`]. Touches nothing.
    ///
    /// ```
    /// use liqo_net::overlay::{Overlay, OverlayKind, OverlayLink, OverlaySpec};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let link = OverlayLink::new(
    ///     OverlayKind::Vxlan, 17,
    ///     "192.168.1.10".parse()?, "10.42.1.7".parse()?,
    ///     "10.80.0.2".parse()?, "10.80.0.1".parse()?,
    /// );
    /// let overlay = Overlay::new(OverlaySpec::node(&link, "liqo.0123456789", vec![]))?;
    /// assert_eq!(overlay.table(), liqo_net::sys::table_id("liqo.0123456789-node-gw"));
    /// assert!(Overlay::new(OverlaySpec::node(&link, "much-too-long-a-name", vec![])).is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`OverlaySpec::validate`].
    pub fn new(spec: OverlaySpec) -> Result<Self> {
        spec.validate()?;
        Ok(Self {
            table: crate::sys::table_id(&spec.table_name),
            spec,
            netns: None,
        })
    }

    /// The same overlay, applied in the named network namespace (`ip -n <netns>`).
    #[must_use]
    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// What this overlay makes true.
    #[must_use]
    pub const fn spec(&self) -> &OverlaySpec {
        &self.spec
    }

    /// The id of its routing table.
    #[must_use]
    pub const fn table(&self) -> u32 {
        self.table
    }

    async fn ip(&self, args: &[&str]) -> Result<String> {
        ip_in(self.netns.as_deref(), args).await
    }

    /// Creates or repairs the link, its address, routes and rules. Returns whether anything
    /// had to change (false when all was in place). Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedOverlay`] when the kernel cannot create links of the kind (no
    /// `geneve` module); [`Error::Command`] when an `ip` command fails.
    pub async fn ensure(&self) -> Result<bool> {
        let mut changed = self.ensure_link().await?;
        changed |= ensure_address(
            self.netns.as_deref(),
            &self.spec.interface,
            host(self.spec.local_address),
        )
        .await?;
        changed |= self.ensure_routes().await?;
        changed |= self.ensure_rules().await?;
        Ok(changed)
    }

    async fn ensure_link(&self) -> Result<bool> {
        let spec = &self.spec;
        let name = spec.interface.as_str();
        let existing = link_state(self.netns.as_deref(), name).await?;
        let mut changed = false;
        match &existing {
            Some(link) if link_matches(spec, link) => {}
            other => {
                if other.is_some() {
                    tracing::info!(link = name, "recreating overlay link with new settings");
                    self.ip(&["link", "delete", "dev", name]).await?;
                }
                let (vni, port) = (spec.vni.to_string(), spec.port.to_string());
                let (remote, local) = (
                    spec.remote_underlay.to_string(),
                    spec.local_underlay.to_string(),
                );
                let kind = spec.kind.as_str();
                let mut args = vec![
                    "link", "add", name, "type", kind, "id", &vni, "remote", &remote, "dstport",
                    &port,
                ];
                if spec.kind == OverlayKind::Vxlan {
                    args.extend(["local", local.as_str()]);
                }
                self.ip(&args)
                    .await
                    .map_err(|e| unsupported(spec.kind, e))?;
                changed = true;
            }
        }
        let needs_set = changed || existing.as_ref().is_none_or(|l| !l.up || l.mtu != spec.mtu);
        if needs_set {
            let mtu = spec.mtu.to_string();
            self.ip(&["link", "set", "dev", name, "mtu", &mtu, "up"])
                .await?;
            changed = true;
        }
        Ok(changed)
    }

    fn desired_routes(&self) -> Vec<RouteEntry> {
        let dev = self.spec.interface.clone();
        let mut routes = vec![RouteEntry {
            dst: host(self.spec.remote_address),
            gateway: None,
            dev: dev.clone(),
        }];
        let mut seen = BTreeSet::new();
        for cidr in &self.spec.routes {
            let dst = normalize(*cidr);
            if dst != host(self.spec.remote_address) && seen.insert(dst) {
                routes.push(RouteEntry {
                    dst,
                    gateway: Some(IpAddr::V4(self.spec.remote_address)),
                    dev: dev.clone(),
                });
            }
        }
        routes
    }

    async fn ensure_routes(&self) -> Result<bool> {
        let table = self.table.to_string();
        let proto = RT_PROTOCOL.to_string();
        let existing = table_routes(self.netns.as_deref(), self.table).await?;
        let plan = plan_routes(&existing, &self.desired_routes());
        for dst in &plan.delete {
            let dst = dst.to_string();
            self.ip(&["route", "del", &dst, "table", &table]).await?;
        }
        for route in &plan.replace {
            let dst = route.dst.to_string();
            let mut args = vec!["route", "replace", &dst];
            let gateway = route.gateway.map(|g| g.to_string());
            match &gateway {
                Some(gw) => args.extend(["via", gw.as_str(), "dev", &route.dev, "onlink"]),
                None => args.extend(["dev", &route.dev, "scope", "link"]),
            }
            args.extend(["table", &table, "proto", &proto]);
            self.ip(&args).await?;
        }
        Ok(!plan.delete.is_empty() || !plan.replace.is_empty())
    }

    async fn ensure_rules(&self) -> Result<bool> {
        let table = self.table.to_string();
        let existing = self.rules().await?;
        let plan = plan_rules(
            &existing,
            self.table,
            &self.spec.rule_destinations(),
            self.spec.rule_priority,
        );
        for rule in &plan.delete {
            self.delete_rule(rule).await?;
        }
        let proto = RT_PROTOCOL.to_string();
        for dst in &plan.add {
            let dst = dst.to_string();
            let mut args = vec!["rule", "add", "to", &dst, "lookup", &table, "proto", &proto];
            let priority = self.spec.rule_priority.map(|p| p.to_string());
            if let Some(priority) = &priority {
                args.extend(["priority", priority.as_str()]);
            }
            self.ip(&args).await?;
        }
        Ok(!plan.delete.is_empty() || !plan.add.is_empty())
    }

    async fn rules(&self) -> Result<Vec<RuleEntry>> {
        parse_rules(&self.ip(&["-j", "rule", "show"]).await?)
    }

    async fn delete_rule(&self, rule: &RuleEntry) -> Result<()> {
        delete_rule(self.netns.as_deref(), rule).await
    }

    /// Removes the link, the routing table's routes and the rules pointing to it.
    /// Idempotent: what is already gone is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Command`] when an `ip` command fails.
    pub async fn remove(&self) -> Result<()> {
        for rule in self.rules().await? {
            if rule.table == Some(self.table) {
                self.delete_rule(&rule).await?;
            }
        }
        flush_table(self.netns.as_deref(), self.table).await?;
        if link_state(self.netns.as_deref(), &self.spec.interface)
            .await?
            .is_some()
        {
            self.ip(&["link", "delete", "dev", &self.spec.interface])
                .await?;
        }
        Ok(())
    }
}

/// Removes what overlays of a dead process left behind in a network namespace (`None`: the
/// process's): every `vxlan` or `geneve` link whose name starts with `prefix` (normally
/// [`INTERFACE_PREFIX`]), and every rule carrying [`RT_PROTOCOL`] with the routes of its
/// table, except those of the overlays in `keep`. Returns the names of the removed links and
/// the ids of the removed tables, for the logs.
///
/// Call it with **all** the overlays the caller manages in that namespace: it assumes the
/// caller is the only manager of overlays there (one fabric agent per node, one gateway per
/// pod, as upstream).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), liqo_net::Error> {
/// use liqo_net::overlay::{INTERFACE_PREFIX, cleanup_stale};
/// let removed = cleanup_stale(None, INTERFACE_PREFIX, &[]).await?;
/// println!("removed {removed:?}");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Command`] when an `ip` command fails.
pub async fn cleanup_stale(
    netns: Option<&str>,
    prefix: &str,
    keep: &[&Overlay],
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    if prefix.is_empty() {
        return Err(Error::InvalidOverlay(
            "an empty prefix would match every link".to_owned(),
        ));
    }
    let links: Value = parse_json(
        "ip -d -j link show",
        &ip_in(netns, &["-d", "-j", "link", "show"]).await?,
    )?;
    for link in links.as_array().into_iter().flatten() {
        let Some(name) = link.get("ifname").and_then(Value::as_str) else {
            continue;
        };
        let kind = link
            .pointer("/linkinfo/info_kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.starts_with(prefix)
            && matches!(kind, "vxlan" | "geneve")
            && !keep.iter().any(|o| o.spec.interface == name)
        {
            ip_in(netns, &["link", "delete", "dev", name]).await?;
            removed.push(name.to_owned());
        }
    }
    let kept_tables: BTreeSet<u32> = keep.iter().map(|o| o.table).collect();
    let rules = parse_rules(&ip_in(netns, &["-j", "rule", "show"]).await?)?;
    let mut stale_tables = BTreeSet::new();
    for rule in rules {
        if let (Some(table), Some(RT_PROTOCOL)) = (rule.table, rule.protocol)
            && !kept_tables.contains(&table)
        {
            delete_rule(netns, &rule).await?;
            stale_tables.insert(table);
        }
    }
    for table in stale_tables {
        flush_table(netns, table).await?;
        removed.push(format!("table {table}"));
    }
    Ok(removed)
}

// ---------------------------------------------------------------------------------------
// `ip` plumbing shared with the VXLAN backend.

/// `ip [-n <netns>] <args>`.
pub(crate) async fn ip_in(netns: Option<&str>, args: &[&str]) -> Result<String> {
    match netns {
        Some(ns) => {
            let mut full = Vec::with_capacity(args.len() + 2);
            full.extend(["-n", ns]);
            full.extend_from_slice(args);
            crate::sys::ip(&full).await
        }
        None => crate::sys::ip(args).await,
    }
}

/// What `ip -d -s -j link show dev <name>` says about a link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub(crate) kind: Option<String>,
    pub(crate) vni: Option<u32>,
    pub(crate) port: Option<u16>,
    pub(crate) remote: Option<IpAddr>,
    pub(crate) local: Option<IpAddr>,
    pub(crate) mtu: u32,
    pub(crate) up: bool,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_bytes: u64,
}

/// The state of link `name`, `None` if there is no such link.
pub(crate) async fn link_state(netns: Option<&str>, name: &str) -> Result<Option<LinkState>> {
    match ip_in(netns, &["-d", "-s", "-j", "link", "show", "dev", name]).await {
        Ok(out) => parse_link_state(&out).map(Some),
        Err(Error::Command { message, .. }) if message.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_json(command: &str, out: &str) -> Result<Value> {
    serde_json::from_str(out).map_err(|e| Error::UnexpectedOutput {
        command: command.to_owned(),
        reason: format!("not JSON: {e}"),
    })
}

fn parse_link_state(out: &str) -> Result<LinkState> {
    let value = parse_json("ip -j link show", out)?;
    let Some(link) = value.as_array().and_then(|a| a.first()) else {
        return Err(Error::UnexpectedOutput {
            command: "ip -j link show".to_owned(),
            reason: "no link in the answer".to_owned(),
        });
    };
    let data = link.pointer("/linkinfo/info_data");
    let ip_field = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    };
    let num = |v: Option<&Value>| v.and_then(Value::as_u64);
    Ok(LinkState {
        kind: link
            .pointer("/linkinfo/info_kind")
            .and_then(Value::as_str)
            .map(str::to_owned),
        vni: num(data.and_then(|d| d.get("id"))).and_then(|n| u32::try_from(n).ok()),
        port: num(data.and_then(|d| d.get("port"))).and_then(|n| u16::try_from(n).ok()),
        remote: ip_field("remote"),
        local: ip_field("local"),
        mtu: num(link.get("mtu"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_default(),
        up: link
            .get("flags")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP"))),
        rx_bytes: num(link.pointer("/stats64/rx/bytes")).unwrap_or_default(),
        tx_bytes: num(link.pointer("/stats64/tx/bytes")).unwrap_or_default(),
    })
}

fn link_matches(spec: &OverlaySpec, link: &LinkState) -> bool {
    link.kind.as_deref() == Some(spec.kind.as_str())
        && link.vni == Some(spec.vni)
        && link.port == Some(spec.port)
        && link.remote == Some(spec.remote_underlay)
        && (spec.kind != OverlayKind::Vxlan || link.local == Some(spec.local_underlay))
}

/// Maps the kernel's "Unknown device type" to [`Error::UnsupportedOverlay`].
fn unsupported(kind: OverlayKind, e: Error) -> Error {
    match e {
        Error::Command { message, .. } if message.contains("Unknown device type") => {
            Error::UnsupportedOverlay {
                kind: kind.as_str(),
                reason: format!(
                    "`ip link add type {kind}` says \"Unknown device type\": the `{kind}` kernel module is missing"
                ),
            }
        }
        other => other,
    }
}

/// Makes `address` the only address of its family on `name` (IPv6 link-local addresses
/// are left alone). Returns whether anything changed.
pub(crate) async fn ensure_address(
    netns: Option<&str>,
    name: &str,
    address: IpNetwork,
) -> Result<bool> {
    let out = ip_in(netns, &["-j", "addr", "show", "dev", name]).await?;
    let existing = parse_addresses(&out)?;
    let mut changed = false;
    for other in existing
        .iter()
        .filter(|a| a.is_ipv4() == address.is_ipv4() && **a != address)
        .filter(|a| !matches!(a.ip(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
    {
        let other = other.to_string();
        ip_in(netns, &["addr", "del", &other, "dev", name]).await?;
        changed = true;
    }
    if !existing.contains(&address) {
        let address = address.to_string();
        ip_in(netns, &["addr", "replace", &address, "dev", name]).await?;
        changed = true;
    }
    Ok(changed)
}

fn parse_addresses(out: &str) -> Result<Vec<IpNetwork>> {
    let value = parse_json("ip -j addr show", out)?;
    let mut addresses = Vec::new();
    for info in value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info").and_then(Value::as_array))
        .flatten()
    {
        let local = info.get("local").and_then(Value::as_str);
        let len = info.get("prefixlen").and_then(Value::as_u64);
        if let (Some(local), Some(len)) = (local, len)
            && let (Ok(ip), Ok(len)) = (local.parse::<IpAddr>(), u8::try_from(len))
            && let Ok(net) = IpNetwork::new(ip, len)
        {
            addresses.push(net);
        }
    }
    Ok(addresses)
}

/// A route of an overlay table, as far as the overlay cares.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RouteEntry {
    dst: IpNetwork,
    gateway: Option<IpAddr>,
    dev: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct RoutePlan {
    delete: Vec<IpNetwork>,
    replace: Vec<RouteEntry>,
}

/// What to delete (routes of the table that are not wanted) and what to (re)install.
fn plan_routes(existing: &[RouteEntry], desired: &[RouteEntry]) -> RoutePlan {
    let delete = existing
        .iter()
        .filter(|e| !desired.iter().any(|d| d.dst == e.dst))
        .map(|e| e.dst)
        .collect();
    let replace = desired
        .iter()
        .filter(|d| !existing.contains(d))
        .cloned()
        .collect();
    RoutePlan { delete, replace }
}

fn parse_routes(out: &str) -> Result<Vec<RouteEntry>> {
    let value = parse_json("ip -j route show", out)?;
    let mut routes = Vec::new();
    for route in value.as_array().into_iter().flatten() {
        let Some(dst) = route.get("dst").and_then(Value::as_str) else {
            continue;
        };
        let Some(dst) = parse_dst(dst) else { continue };
        routes.push(RouteEntry {
            dst,
            gateway: route
                .get("gateway")
                .and_then(Value::as_str)
                .and_then(|g| g.parse().ok()),
            dev: route
                .get("dev")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(routes)
}

/// `10.1.0.0/16`, `10.80.0.1` (a host) or `default`.
fn parse_dst(dst: &str) -> Option<IpNetwork> {
    match dst {
        "default" => Some(IpNetwork::V4(
            Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).ok()?,
        )),
        _ if dst.contains('/') => dst.parse().ok().map(normalize),
        _ => dst
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| IpNetwork::new(ip, if ip.is_ipv4() { 32 } else { 128 }).ok()),
    }
}

/// A routing rule, as far as the overlay cares.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RuleEntry {
    priority: Option<u32>,
    dst: Option<IpNetwork>,
    table: Option<u32>,
    protocol: Option<u8>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct RulePlan {
    delete: Vec<RuleEntry>,
    add: Vec<IpNetwork>,
}

/// Rules of `table` to delete (unwanted destination, or wrong priority) and destinations
/// missing a rule. Rules of other tables are never touched.
fn plan_rules(
    existing: &[RuleEntry],
    table: u32,
    desired: &BTreeSet<IpNetwork>,
    priority: Option<u32>,
) -> RulePlan {
    let mut plan = RulePlan::default();
    let mut covered = BTreeSet::new();
    for rule in existing.iter().filter(|r| r.table == Some(table)) {
        let wanted = rule.dst.is_some_and(|d| desired.contains(&d))
            && priority.is_none_or(|p| rule.priority == Some(p))
            && rule.dst.is_some_and(|d| !covered.contains(&d));
        if wanted {
            if let Some(dst) = rule.dst {
                covered.insert(dst);
            }
        } else {
            plan.delete.push(rule.clone());
        }
    }
    plan.add = desired.difference(&covered).copied().collect();
    plan
}

fn parse_rules(out: &str) -> Result<Vec<RuleEntry>> {
    let value = parse_json("ip -j rule show", out)?;
    let mut rules = Vec::new();
    for rule in value.as_array().into_iter().flatten() {
        let dst = match (
            rule.get("dst").and_then(Value::as_str),
            rule.get("dstlen").and_then(Value::as_u64),
        ) {
            (Some(dst), Some(len)) => dst
                .parse::<IpAddr>()
                .ok()
                .zip(u8::try_from(len).ok())
                .and_then(|(ip, len)| IpNetwork::new(ip, len).ok()),
            (Some(dst), None) => parse_dst(dst),
            _ => None,
        };
        rules.push(RuleEntry {
            priority: rule
                .get("priority")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            dst,
            table: rule
                .get("table")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok()),
            protocol: rule
                .get("protocol")
                .and_then(Value::as_str)
                .and_then(|p| p.parse().ok()),
        });
    }
    Ok(rules)
}

async fn delete_rule(netns: Option<&str>, rule: &RuleEntry) -> Result<()> {
    let Some(table) = rule.table else {
        return Ok(());
    };
    let table = table.to_string();
    let priority = rule.priority.map(|p| p.to_string());
    let dst = rule.dst.map(|d| d.to_string());
    let mut args = vec!["rule", "del"];
    if let Some(priority) = &priority {
        args.extend(["priority", priority.as_str()]);
    }
    if let Some(dst) = &dst {
        args.extend(["to", dst.as_str()]);
    }
    args.extend(["lookup", &table]);
    match ip_in(netns, &args).await {
        // Already gone (raced with another cleanup): fine.
        Err(Error::Command { message, .. }) if message.contains("No such file") => Ok(()),
        other => other.map(drop),
    }
}

/// The routes of `table`; none when the kernel has no such table yet.
async fn table_routes(netns: Option<&str>, table: u32) -> Result<Vec<RouteEntry>> {
    let table = table.to_string();
    match ip_in(netns, &["-j", "route", "show", "table", &table]).await {
        Ok(out) => parse_routes(&out),
        Err(Error::Command { message, .. }) if message.contains("table does not exist") => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

async fn flush_table(netns: Option<&str>, table: u32) -> Result<()> {
    let routes = table_routes(netns, table).await?;
    let table = table.to_string();
    if !routes.is_empty() {
        ip_in(netns, &["route", "flush", "table", &table]).await?;
    }
    Ok(())
}

fn normalize(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

fn host(ip: Ipv4Addr) -> IpNetwork {
    IpNetwork::V4(Ipv4Network::from(ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn link() -> OverlayLink {
        OverlayLink::new(
            OverlayKind::Vxlan,
            17,
            "192.168.1.10".parse().unwrap(),
            "10.42.1.7".parse().unwrap(),
            "10.80.0.2".parse().unwrap(),
            "10.80.0.1".parse().unwrap(),
        )
    }

    #[test]
    fn link_state_from_ip_json() {
        let out = r#"[{"ifindex":2,"ifname":"lnavx","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1340,
            "linkinfo":{"info_kind":"vxlan","info_data":{"id":42,"remote":"192.0.2.1","local":"192.0.2.2","port":6091}},
            "stats64":{"rx":{"bytes":10},"tx":{"bytes":20}}}]"#;
        let state = parse_link_state(out).unwrap();
        assert_eq!(state.kind.as_deref(), Some("vxlan"));
        assert_eq!(
            (state.vni, state.port, state.mtu),
            (Some(42), Some(6091), 1340)
        );
        assert_eq!(state.remote, Some("192.0.2.1".parse().unwrap()));
        assert!(state.up);
        assert_eq!((state.rx_bytes, state.tx_bytes), (10, 20));
        assert!(parse_link_state("[]").is_err());
        assert!(parse_link_state("garbage").is_err());
    }

    #[test]
    fn routes_and_rules_from_ip_json() {
        let routes = parse_routes(r#"[{"dst":"10.1.0.0/16","gateway":"10.80.0.1","dev":"x","protocol":"76","flags":["onlink"]},
            {"dst":"10.80.0.1","dev":"x","scope":"link","flags":[]},{"dst":"default","dev":"y"}]"#).unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1].dst, net("10.80.0.1/32"));
        assert_eq!(routes[2].dst, net("0.0.0.0/0"));
        let rules = parse_rules(r#"[{"priority":0,"src":"all","table":"local"},
            {"priority":32765,"src":"all","dst":"10.1.0.0","dstlen":16,"table":"1234","protocol":"76"}]"#).unwrap();
        assert_eq!(rules[0].table, None);
        assert_eq!(
            rules[1],
            RuleEntry {
                priority: Some(32765),
                dst: Some(net("10.1.0.0/16")),
                table: Some(1234),
                protocol: Some(76)
            }
        );
    }

    #[test]
    fn route_plan_installs_missing_and_deletes_unwanted_only() {
        let overlay = Overlay::new(OverlaySpec::node(
            &link(),
            "liqo.0123456789",
            vec![
                net("10.71.0.0/16"),
                net("10.71.0.0/16"),
                net("10.72.1.9/16"),
            ],
        ))
        .unwrap();
        let desired = overlay.desired_routes();
        assert_eq!(desired.len(), 3, "{desired:?}"); // gateway host + 2 distinct CIDRs
        assert_eq!(desired[2].dst, net("10.72.0.0/16"));
        let plan = plan_routes(&[], &desired);
        assert_eq!((plan.delete.len(), plan.replace.len()), (0, 3));
        let mut existing = desired.clone();
        assert_eq!(plan_routes(&existing, &desired), RoutePlan::default());
        existing[1].gateway = Some("10.80.0.9".parse().unwrap());
        existing.push(RouteEntry {
            dst: net("10.99.0.0/16"),
            gateway: None,
            dev: "liqo.0123456789".into(),
        });
        let plan = plan_routes(&existing, &desired);
        assert_eq!(plan.delete, vec![net("10.99.0.0/16")]);
        assert_eq!(plan.replace, vec![desired[1].clone()]);
    }

    #[test]
    fn rule_plan_touches_only_its_table() {
        let desired: BTreeSet<_> = [net("10.71.0.0/16"), net("10.80.0.1/32")].into();
        let rule = |dst: &str, table, priority| RuleEntry {
            priority: Some(priority),
            dst: Some(net(dst)),
            table: Some(table),
            protocol: Some(RT_PROTOCOL),
        };
        let existing = vec![
            rule("10.71.0.0/16", 7, 100),
            rule("10.71.0.0/16", 7, 100), // duplicate
            rule("10.55.0.0/16", 7, 100), // no longer wanted
            rule("10.80.0.1/32", 8, 100), // another table
        ];
        let plan = plan_rules(&existing, 7, &desired, None);
        assert_eq!(plan.delete, vec![existing[1].clone(), existing[2].clone()]);
        assert_eq!(plan.add, vec![net("10.80.0.1/32")]);
        // With a priority, a rule at another priority is replaced.
        let plan = plan_rules(&existing[..1], 7, &desired, Some(200));
        assert_eq!(plan.delete, vec![existing[0].clone()]);
        assert_eq!(plan.add.len(), 2);
    }

    #[test]
    fn specs_validate() {
        let node = OverlaySpec::node(&link(), "liqo.0123456789", vec![net("fd00::/64")]);
        assert!(matches!(
            node.validate(),
            Err(Error::UnsupportedFamily { .. })
        ));
        let mut node = OverlaySpec::node(&link(), "liqo.0123456789", vec![]);
        node.vni = MAX_VNI + 1;
        assert!(matches!(node.validate(), Err(Error::InvalidOverlay(_))));
        let mut node = OverlaySpec::node(&link(), "liqo.0123456789", vec![]);
        node.remote_address = node.local_address;
        assert!(node.validate().is_err());
        let gw = OverlaySpec::gateway(&link(), "liqo.9876543210", vec![net("10.0.1.0/24")]);
        gw.validate().unwrap();
        assert_eq!(gw.local_underlay, link().gateway_underlay);
        assert_eq!(gw.table_name, "liqo.9876543210-gw-node");
    }

    #[test]
    fn geneve_missing_is_explained() {
        let e = unsupported(
            OverlayKind::Geneve,
            Error::Command {
                command: "ip link add".into(),
                message: "exit status: 2: Error: Unknown device type.".into(),
            },
        );
        assert!(
            e.to_string().contains("`geneve` kernel module is missing"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// From the fabric resources to the node's overlays.

/// A network identifier for the link between a gateway's `InternalFabric` (`namespace/name`)
/// and a node, for when no `GeneveTunnel` assigns one: the first 3 bytes of the SHA-256 of
/// `"<fabric>|<node>"` (never 0). The gateway end must derive it the same way.
///
/// ```
/// use liqo_net::overlay::{MAX_VNI, derive_vni};
///
/// let vni = derive_vni("liqo-tenant-milan/gw-milan", "node-1");
/// assert!(vni > 0 && vni <= MAX_VNI);
/// assert_eq!(vni, derive_vni("liqo-tenant-milan/gw-milan", "node-1"));
/// assert_ne!(vni, derive_vni("liqo-tenant-milan/gw-milan", "node-2"));
/// ```
#[must_use]
pub fn derive_vni(fabric: &str, node: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{fabric}|{node}").as_bytes());
    let bytes = digest.as_ref();
    (u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2])).max(1)
}

/// How the node's overlays are built from resources, beside what the resources say.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeDefaults {
    /// The node's name (`InternalNode` and `GeneveTunnel.spec.internalNodeRef.name`).
    pub node_name: String,
    /// The node's underlay IP.
    pub node_ip: IpAddr,
    /// The overlay type.
    pub kind: OverlayKind,
    /// The overlay UDP port.
    pub port: u16,
    /// MTU when the `InternalFabric` sets none.
    pub mtu: u32,
    /// Priority of the rules.
    pub rule_priority: Option<u32>,
}

impl NodeDefaults {
    /// Defaults for `node_name` at `node_ip`: VXLAN, [`DEFAULT_OVERLAY_PORT`],
    /// [`DEFAULT_MTU`], rule priority chosen by the kernel.
    #[must_use]
    pub fn new(node_name: impl Into<String>, node_ip: IpAddr) -> Self {
        Self {
            node_name: node_name.into(),
            node_ip,
            kind: OverlayKind::Vxlan,
            port: DEFAULT_OVERLAY_PORT,
            mtu: DEFAULT_MTU,
            rule_priority: None,
        }
    }
}

/// The node's end of the overlay towards every gateway, from the `InternalFabric`s (one per
/// gateway), this node's `InternalNode` and the `GeneveTunnel`s (network identifiers; when
/// none matches, [`derive_vni`]). One entry per `InternalFabric`, keyed `namespace/name`,
/// with the spec or what is wrong with the resource (so that one bad resource does not stop
/// the others).
///
/// ```
/// use liqo_core::api::networking::v1beta1::{InternalFabric, InternalNode};
/// use liqo_net::overlay::{NodeDefaults, node_specs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fabric: InternalFabric = serde_json::from_value(serde_json::json!({
///     "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
///     "metadata": {"name": "gw-milan", "namespace": "liqo-tenant-milan"},
///     "spec": {"gatewayIP": "10.42.1.7", "remoteCIDRs": ["10.71.0.0/16"],
///              "interface": {"node": {"name": "liqo.abcdef0123"}, "gateway": {"ip": "10.80.0.1"}}}
/// }))?;
/// let node: InternalNode = serde_json::from_value(serde_json::json!({
///     "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalNode",
///     "metadata": {"name": "node-1"},
///     "spec": {"interface": {"node": {"ip": "10.80.0.2"}, "gateway": {"name": "liqo.0011223344"}}}
/// }))?;
/// let specs = node_specs(&NodeDefaults::new("node-1", "192.168.1.10".parse()?), &node, &[fabric], &[]);
/// let (key, spec) = &specs[0];
/// assert_eq!(key, "liqo-tenant-milan/gw-milan");
/// let spec = spec.as_ref().map_err(|e| e.to_string())?;
/// assert_eq!((spec.interface.as_str(), spec.remote_address.to_string()), ("liqo.abcdef0123", "10.80.0.1".to_owned()));
/// # Ok(()) }
/// ```
#[must_use]
pub fn node_specs(
    defaults: &NodeDefaults,
    node: &liqo_core::api::networking::v1beta1::InternalNode,
    fabrics: &[liqo_core::api::networking::v1beta1::InternalFabric],
    tunnels: &[liqo_core::api::networking::v1beta1::GeneveTunnel],
) -> Vec<(String, Result<OverlaySpec>)> {
    fabrics
        .iter()
        .map(|fabric| {
            let namespace = fabric.metadata.namespace.clone().unwrap_or_default();
            let name = fabric.metadata.name.clone().unwrap_or_default();
            let key = format!("{namespace}/{name}");
            let spec = node_spec(defaults, node, fabric, tunnels, &key).and_then(|spec| {
                spec.validate()?;
                Ok(spec)
            });
            (key, spec)
        })
        .collect()
}

fn node_spec(
    defaults: &NodeDefaults,
    node: &liqo_core::api::networking::v1beta1::InternalNode,
    fabric: &liqo_core::api::networking::v1beta1::InternalFabric,
    tunnels: &[liqo_core::api::networking::v1beta1::GeneveTunnel],
    key: &str,
) -> Result<OverlaySpec> {
    let bad = |what: &str, value: &str| {
        Error::InvalidOverlay(format!(
            "InternalFabric {key}: {what} {value:?} is not valid"
        ))
    };
    let gateway_ip: IpAddr = fabric
        .spec
        .gateway_ip
        .to_string()
        .parse()
        .map_err(|_| bad("spec.gatewayIP", fabric.spec.gateway_ip.as_ref()))?;
    let gateway_address: Ipv4Addr = fabric
        .spec
        .interface
        .gateway
        .ip
        .to_string()
        .parse()
        .map_err(|_| {
            bad(
                "spec.interface.gateway.ip",
                fabric.spec.interface.gateway.ip.as_ref(),
            )
        })?;
    let node_ip_text = node.spec.interface.node.ip.to_string();
    let node_address: Ipv4Addr = node_ip_text.parse().map_err(|_| {
        Error::InvalidOverlay(format!(
            "InternalNode {}: spec.interface.node.ip {node_ip_text:?} is not an IPv4 address",
            defaults.node_name
        ))
    })?;
    let remote_cidrs = fabric
        .spec
        .remote_cidrs
        .iter()
        .map(|c| {
            c.to_string()
                .parse::<IpNetwork>()
                .map_err(|_| bad("spec.remoteCIDRs entry", c.as_ref()))
        })
        .collect::<Result<Vec<_>>>()?;
    let (fabric_ns, fabric_name) = key.split_once('/').unwrap_or(("", key));
    let vni = tunnels
        .iter()
        .find(|t| {
            let f = &t.spec.internal_fabric_ref;
            f.name.as_deref() == Some(fabric_name)
                && f.namespace.as_deref().is_none_or(|ns| ns == fabric_ns)
                && t.spec.internal_node_ref.name.as_deref() == Some(defaults.node_name.as_str())
        })
        .map_or_else(|| derive_vni(key, &defaults.node_name), |t| t.spec.id);
    let mtu = match fabric.spec.mtu {
        Some(mtu) => u32::try_from(mtu).map_err(|_| bad("spec.mtu", &mtu.to_string()))?,
        None => defaults.mtu,
    };
    let link = OverlayLink::new(
        defaults.kind,
        vni,
        defaults.node_ip,
        gateway_ip,
        node_address,
        gateway_address,
    )
    .with_port(defaults.port)
    .with_mtu(mtu);
    Ok(
        OverlaySpec::node(&link, fabric.spec.interface.node.name.clone(), remote_cidrs)
            .with_rule_priority(defaults.rule_priority),
    )
}

#[cfg(test)]
mod resource_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use liqo_core::api::networking::v1beta1::{GeneveTunnel, InternalFabric, InternalNode};
    use serde_json::json;

    use super::*;

    fn fabric(name: &str, gateway_ip: &str, cidrs: &[&str]) -> InternalFabric {
        serde_json::from_value(json!({
            "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"gatewayIP": gateway_ip, "remoteCIDRs": cidrs, "mtu": 1400,
                     "interface": {"node": {"name": format!("liqo.{name}")}, "gateway": {"ip": "10.80.0.1"}}}
        }))
        .unwrap()
    }

    #[test]
    fn specs_from_resources() {
        let node: InternalNode = serde_json::from_value(json!({
            "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalNode",
            "metadata": {"name": "n1"},
            "spec": {"interface": {"node": {"ip": "10.80.0.2"}, "gateway": {"name": "liqo.gw"}}}
        }))
        .unwrap();
        let tunnel: GeneveTunnel = serde_json::from_value(json!({
            "apiVersion": "networking.liqo.io/v1beta1", "kind": "GeneveTunnel",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"id": 4242, "internalNodeRef": {"name": "n1"}, "internalFabricRef": {"name": "a", "namespace": "ns"}}
        }))
        .unwrap();
        let defaults = NodeDefaults::new("n1", "192.168.1.10".parse().unwrap());
        let fabrics = [
            fabric("a", "10.42.1.7", &["10.71.0.0/16"]),
            fabric("b", "10.42.1.8", &["10.72.0.0/16"]),
            fabric("c", "not-an-ip", &[]),
            fabric("d", "10.42.1.9", &["10.73.0.0/99"]),
        ];
        let specs = node_specs(&defaults, &node, &fabrics, &[tunnel]);
        let a = specs[0].1.as_ref().unwrap();
        assert_eq!((a.vni, a.mtu, a.interface.as_str()), (4242, 1400, "liqo.a"));
        assert_eq!(a.remote_underlay.to_string(), "10.42.1.7");
        assert_eq!(a.local_underlay.to_string(), "192.168.1.10");
        let b = specs[1].1.as_ref().unwrap();
        assert_eq!(b.vni, derive_vni("ns/b", "n1"));
        let c = specs[2].1.as_ref().unwrap_err().to_string();
        assert!(c.contains("InternalFabric ns/c: spec.gatewayIP"), "{c}");
        let d = specs[3].1.as_ref().unwrap_err().to_string();
        assert!(d.contains("remoteCIDRs"), "{d}");
    }
}
