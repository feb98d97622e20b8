//! The gateway's 1:1 prefix NAT for a peer's remapped CIDRs, rendered as an `nft -f` script.
//!
//! When the peer's pod CIDR (or external CIDR) collides with a local one, the local cluster
//! sees it through a remapped CIDR of the same size (see [`liqo_ipam::remap`]). The gateway
//! translates between the two, address by address, keeping the host part:
//!
//! - chain `outgoing` (nat, prerouting, priority `dstnat`): traffic from the local cluster
//!   to the remapped CIDR gets its destination translated to the real CIDR (`dnat prefix`);
//! - chain `incoming` (nat, postrouting, priority `srcnat`): traffic arriving from the tunnel
//!   from the real CIDR gets its source translated to the remapped CIDR (`snat prefix`).
//!
//! The rules live in upstream's tables `remap-podcidr` and `remap-externalcidr` (family
//! `ip`), one gateway (network namespace) per peer. A CIDR that was not remapped needs no
//! rule, and a kind without remapped CIDRs gets no table.
//!
//! The script is text because nftables' JSON schema, as the `nftables` crate models it,
//! cannot express prefix NAT (`netmap`). Applying it is up to the caller
//! (`nft -f -`, inside the gateway's network namespace); it is one atomic transaction,
//! idempotent, and touches no table but the two above.

use std::fmt::Write as _;

use liqo_ipam::remap::{Mapping, RemoteCidrs};

use crate::tunnel::validate_interface_name;
use crate::{Error, Result};

/// Table of the pod CIDR remapping (upstream's name).
pub const POD_CIDR_TABLE: &str = "remap-podcidr";

/// Table of the external CIDR remapping (upstream's name).
pub const EXTERNAL_CIDR_TABLE: &str = "remap-externalcidr";

/// Chain translating destinations, remapped to real (upstream's name).
pub const DNAT_CHAIN: &str = "outgoing";

/// Chain translating sources, real to remapped (upstream's name).
pub const SNAT_CHAIN: &str = "incoming";

/// Which of the peer's CIDRs a table remaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CidrKind {
    /// The peer's pod CIDRs, table [`POD_CIDR_TABLE`].
    Pod,
    /// The peer's external CIDRs, table [`EXTERNAL_CIDR_TABLE`].
    External,
}

impl CidrKind {
    /// Both kinds, in the order their tables are rendered.
    pub const ALL: [Self; 2] = [Self::Pod, Self::External];

    /// The name of the nftables table of this kind.
    ///
    /// ```
    /// use liqo_net::nat::CidrKind;
    ///
    /// assert_eq!(CidrKind::Pod.table_name(), "remap-podcidr");
    /// assert_eq!(CidrKind::External.table_name(), "remap-externalcidr");
    /// ```
    #[must_use]
    pub const fn table_name(self) -> &'static str {
        match self {
            Self::Pod => POD_CIDR_TABLE,
            Self::External => EXTERNAL_CIDR_TABLE,
        }
    }
}

/// The remapping tables of one peer's gateway.
///
/// Built from the peer's [`RemoteCidrs`] and two interface names: the tunnel interface, and
/// the interface of the default route, whose traffic (from the node itself, or arriving from
/// outside) is never translated.
///
/// ```
/// use liqo_ipam::remap::{Mapping, RemoteCidrs};
/// use liqo_net::nat::{CidrKind, RemapTables};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let peer = RemoteCidrs {
///     // The peer uses our pod CIDR 10.0.0.0/16; we see it as 10.1.0.0/16.
///     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?],
///     // Its external CIDR does not collide: nothing to translate.
///     external: vec![Mapping::identity("10.70.0.0/16".parse()?)?],
/// };
/// let tables = RemapTables::new("eth0", "liqo-tunnel", &peer)?;
/// assert_eq!(tables.mappings(CidrKind::Pod).len(), 1);
/// assert!(tables.mappings(CidrKind::External).is_empty());
///
/// let script = tables.render();
/// assert!(script.contains(
///     "ip daddr 10.1.0.0/16 iifname != \"eth0\" iifname != \"liqo-tunnel\" dnat prefix to 10.0.0.0/16"
/// ));
/// assert!(script.contains(
///     "oifname != \"eth0\" ip saddr 10.0.0.0/16 iifname \"liqo-tunnel\" snat prefix to 10.1.0.0/16"
/// ));
/// // A stale external table from an earlier configuration is removed.
/// assert!(script.contains("delete table ip remap-externalcidr\n"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemapTables {
    default_interface: String,
    tunnel_interface: String,
    pod: Vec<Mapping>,
    external: Vec<Mapping>,
}

impl RemapTables {
    /// The tables for the peer's CIDRs `remote`, keeping only the mappings that remap
    /// (identity mappings and exact duplicates are dropped).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInterfaceName`] when an interface name is not valid (see
    /// [`validate_interface_name`]), [`Error::UnsupportedFamily`] for a remapped IPv6 CIDR
    /// (the tables are IPv4, as upstream's).
    pub fn new(
        default_interface: &str,
        tunnel_interface: &str,
        remote: &RemoteCidrs,
    ) -> Result<Self> {
        validate_interface_name(default_interface)?;
        validate_interface_name(tunnel_interface)?;
        Ok(Self {
            default_interface: default_interface.to_owned(),
            tunnel_interface: tunnel_interface.to_owned(),
            pod: remapping(&remote.pod)?,
            external: remapping(&remote.external)?,
        })
    }

    /// The mappings that get a rule in the table of `kind`, in order.
    #[must_use]
    pub fn mappings(&self, kind: CidrKind) -> &[Mapping] {
        match kind {
            CidrKind::Pod => &self.pod,
            CidrKind::External => &self.external,
        }
    }

    /// Whether nothing is remapped, so [`render`](Self::render) only removes tables.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pod.is_empty() && self.external.is_empty()
    }

    /// The interface of the default route, whose traffic is not translated.
    #[must_use]
    pub fn default_interface(&self) -> &str {
        &self.default_interface
    }

    /// The tunnel interface towards the peer.
    #[must_use]
    pub fn tunnel_interface(&self) -> &str {
        &self.tunnel_interface
    }

    /// The definition of the table of `kind`, exactly as `nft list table ip <name>` prints
    /// it once loaded, or `None` when that kind remaps nothing.
    ///
    /// ```
    /// use liqo_ipam::remap::{Mapping, RemoteCidrs};
    /// use liqo_net::nat::{CidrKind, RemapTables};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let peer = RemoteCidrs {
    ///     pod: vec![],
    ///     external: vec![Mapping::new("10.70.0.0/16".parse()?, "10.71.0.0/16".parse()?)?],
    /// };
    /// let tables = RemapTables::new("ens3", "liqo-tunnel", &peer)?;
    /// assert_eq!(tables.table(CidrKind::Pod), None);
    /// assert_eq!(
    ///     tables.table(CidrKind::External).as_deref(),
    ///     Some(concat!(
    ///         "table ip remap-externalcidr {\n",
    ///         "\tchain outgoing {\n",
    ///         "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    ///         "\t\tip daddr 10.71.0.0/16 iifname != \"ens3\" iifname != \"liqo-tunnel\" dnat prefix to 10.70.0.0/16\n",
    ///         "\t}\n",
    ///         "\n",
    ///         "\tchain incoming {\n",
    ///         "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    ///         "\t\toifname != \"ens3\" ip saddr 10.70.0.0/16 iifname \"liqo-tunnel\" snat prefix to 10.71.0.0/16\n",
    ///         "\t}\n",
    ///         "}\n",
    ///     )),
    /// );
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn table(&self, kind: CidrKind) -> Option<String> {
        let mappings = self.mappings(kind);
        if mappings.is_empty() {
            return None;
        }
        let (default, tunnel) = (&self.default_interface, &self.tunnel_interface);
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "table ip {} {{", kind.table_name());
        let _ = writeln!(out, "\tchain {DNAT_CHAIN} {{");
        out.push_str("\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
        for m in mappings {
            let _ = writeln!(
                out,
                "\t\tip daddr {} iifname != \"{default}\" iifname != \"{tunnel}\" dnat prefix to {}",
                m.remapped(),
                m.real(),
            );
        }
        out.push_str("\t}\n\n");
        let _ = writeln!(out, "\tchain {SNAT_CHAIN} {{");
        out.push_str("\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for m in mappings {
            let _ = writeln!(
                out,
                "\t\toifname != \"{default}\" ip saddr {} iifname \"{tunnel}\" snat prefix to {}",
                m.real(),
                m.remapped(),
            );
        }
        out.push_str("\t}\n}\n");
        Some(out)
    }

    /// The `nft -f` script that brings both tables to this state: for each kind, the table
    /// is created if missing and deleted (so applying twice changes nothing and stale rules
    /// go away), then defined again when the kind remaps something. `nft` applies the whole
    /// script as one transaction.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::from(SCRIPT_HEADER);
        for kind in CidrKind::ALL {
            push_reset(&mut out, kind);
            if let Some(table) = self.table(kind) {
                out.push_str(&table);
            }
        }
        out
    }

    /// The `nft -f` script that removes both tables, whether they exist or not.
    ///
    /// ```
    /// use liqo_net::nat::RemapTables;
    ///
    /// let script = RemapTables::render_removal();
    /// assert!(script.ends_with(concat!(
    ///     "table ip remap-podcidr\n",
    ///     "delete table ip remap-podcidr\n",
    ///     "table ip remap-externalcidr\n",
    ///     "delete table ip remap-externalcidr\n",
    /// )));
    /// ```
    #[must_use]
    pub fn render_removal() -> String {
        let mut out = String::from(SCRIPT_HEADER);
        for kind in CidrKind::ALL {
            push_reset(&mut out, kind);
        }
        out
    }
}

const SCRIPT_HEADER: &str =
    "# liqo-net gateway remapping; owns tables ip remap-podcidr and ip remap-externalcidr\n";

/// Creates the table when missing, then deletes it: the idiom that makes `delete` succeed
/// whether or not the table existed.
fn push_reset(out: &mut String, kind: CidrKind) {
    let name = kind.table_name();
    let _ = writeln!(out, "table ip {name}\ndelete table ip {name}");
}

/// The mappings that translate something, without duplicates, refusing IPv6 ones.
fn remapping(mappings: &[Mapping]) -> Result<Vec<Mapping>> {
    let mut kept: Vec<Mapping> = Vec::with_capacity(mappings.len());
    for m in mappings {
        if m.is_identity() || kept.contains(m) {
            continue;
        }
        if !m.real().is_ipv4() {
            return Err(Error::UnsupportedFamily {
                cidr: m.real(),
                what: "the gateway remapping tables (family ip)",
            });
        }
        kept.push(*m);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    fn m(real: &str, remapped: &str) -> Mapping {
        Mapping::new(real.parse().unwrap(), remapped.parse().unwrap()).unwrap()
    }

    fn id(cidr: &str) -> Mapping {
        Mapping::identity(cidr.parse().unwrap()).unwrap()
    }

    #[test]
    fn both_kinds_remapped() {
        let peer = RemoteCidrs {
            pod: vec![m("10.0.0.0/16", "10.1.0.0/16")],
            external: vec![m("10.70.0.0/16", "10.71.0.0/16")],
        };
        let script = RemapTables::new("eth0", "liqo-tunnel", &peer)
            .unwrap()
            .render();
        let expected = "\
# liqo-net gateway remapping; owns tables ip remap-podcidr and ip remap-externalcidr
table ip remap-podcidr
delete table ip remap-podcidr
table ip remap-podcidr {
\tchain outgoing {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 10.1.0.0/16 iifname != \"eth0\" iifname != \"liqo-tunnel\" dnat prefix to 10.0.0.0/16
\t}

\tchain incoming {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname != \"eth0\" ip saddr 10.0.0.0/16 iifname \"liqo-tunnel\" snat prefix to 10.1.0.0/16
\t}
}
table ip remap-externalcidr
delete table ip remap-externalcidr
table ip remap-externalcidr {
\tchain outgoing {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 10.71.0.0/16 iifname != \"eth0\" iifname != \"liqo-tunnel\" dnat prefix to 10.70.0.0/16
\t}

\tchain incoming {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname != \"eth0\" ip saddr 10.70.0.0/16 iifname \"liqo-tunnel\" snat prefix to 10.71.0.0/16
\t}
}
";
        assert_eq!(script, expected);
    }

    #[test]
    fn identity_mappings_produce_no_table() {
        let peer = RemoteCidrs {
            pod: vec![id("10.0.0.0/16")],
            external: vec![id("10.70.0.0/16"), id("fd00::/64")],
        };
        let tables = RemapTables::new("eth0", "liqo-tunnel", &peer).unwrap();
        assert!(tables.is_empty());
        assert_eq!(tables.table(CidrKind::Pod), None);
        assert_eq!(tables.table(CidrKind::External), None);
        assert_eq!(tables.render(), RemapTables::render_removal());
        assert_eq!(
            RemapTables::render_removal(),
            "\
# liqo-net gateway remapping; owns tables ip remap-podcidr and ip remap-externalcidr
table ip remap-podcidr
delete table ip remap-podcidr
table ip remap-externalcidr
delete table ip remap-externalcidr
"
        );
    }

    #[test]
    fn several_pod_cidrs_mixed_and_deduplicated() {
        let peer = RemoteCidrs {
            pod: vec![
                m("10.0.0.0/16", "10.1.0.0/16"),
                id("10.5.0.0/16"),
                m("192.168.0.0/24", "10.9.8.0/24"),
                m("10.0.0.0/16", "10.1.0.0/16"),
            ],
            external: vec![],
        };
        let tables = RemapTables::new("ens5", "liqo-tunnel1", &peer).unwrap();
        assert_eq!(tables.default_interface(), "ens5");
        assert_eq!(tables.tunnel_interface(), "liqo-tunnel1");
        assert_eq!(tables.mappings(CidrKind::Pod).len(), 2);
        assert_eq!(
            tables.table(CidrKind::Pod).unwrap(),
            "\
table ip remap-podcidr {
\tchain outgoing {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 10.1.0.0/16 iifname != \"ens5\" iifname != \"liqo-tunnel1\" dnat prefix to 10.0.0.0/16
\t\tip daddr 10.9.8.0/24 iifname != \"ens5\" iifname != \"liqo-tunnel1\" dnat prefix to 192.168.0.0/24
\t}

\tchain incoming {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname != \"ens5\" ip saddr 10.0.0.0/16 iifname \"liqo-tunnel1\" snat prefix to 10.1.0.0/16
\t\toifname != \"ens5\" ip saddr 192.168.0.0/24 iifname \"liqo-tunnel1\" snat prefix to 10.9.8.0/24
\t}
}
"
        );
        // The external table is still reset, so a stale one disappears.
        let script = tables.render();
        assert!(
            script.ends_with("table ip remap-externalcidr\ndelete table ip remap-externalcidr\n")
        );
    }

    #[test]
    fn rejects_bad_interfaces_and_remapped_ipv6() {
        let empty = RemoteCidrs::default();
        assert!(matches!(
            RemapTables::new("eth0\" accept", "liqo-tunnel", &empty),
            Err(Error::InvalidInterfaceName { .. })
        ));
        assert!(matches!(
            RemapTables::new("eth0", "", &empty),
            Err(Error::InvalidInterfaceName { .. })
        ));
        let v6 = RemoteCidrs {
            pod: vec![m("fd00::/64", "fd01::/64")],
            external: vec![],
        };
        let err = RemapTables::new("eth0", "liqo-tunnel", &v6).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFamily { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "unsupported address family for fd00::/64: the gateway remapping tables (family ip)"
        );
    }
}
