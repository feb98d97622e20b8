//! 1:1 translation between a remote cluster's real CIDRs and the CIDRs they are remapped to.
//!
//! When a peer's pod CIDR collides with something local, the local cluster sees it through a
//! remapped CIDR of the same length, and the gateways translate with prefix NAT: the network
//! bits are replaced, the host bits are kept. [`Mapping`] is that translation for one CIDR, in
//! both directions, for single addresses and for prefixes inside it; [`RemoteCidrs`] applies a
//! peer's pod and external mappings in upstream's order (pod CIDRs first, then external ones).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::{
    core::{Family, Prefix, host_mask, make_network, to_addr, to_u128},
    error::{Error, Result},
};

/// The translation between a real CIDR and its remapped CIDR.
///
/// Both CIDRs have the same address family and prefix length, and no host bits set. An
/// identity mapping (the CIDR was not remapped) is valid and translates nothing.
///
/// ```
/// use liqo_ipam::remap::Mapping;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The peer's pod CIDR 10.0.0.0/16 collides with ours; we see it as 10.1.0.0/16.
/// let m = Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?;
/// assert_eq!(m.to_remapped("10.0.3.7".parse()?)?.to_string(), "10.1.3.7");
/// assert_eq!(m.to_real("10.1.3.7".parse()?)?.to_string(), "10.0.3.7");
/// assert_eq!(m.prefix_to_remapped("10.0.4.0/24".parse()?)?.to_string(), "10.1.4.0/24");
/// // Addresses outside the real CIDR are not translated.
/// assert!(m.to_remapped("10.2.0.1".parse()?).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    real: IpNetwork,
    remapped: IpNetwork,
}

impl Mapping {
    /// The mapping from `real` to `remapped`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when either CIDR has host bits set, [`Error::FamilyMismatch`]
    /// when they belong to different address families, [`Error::MappingMismatch`] when their
    /// prefix lengths differ.
    pub fn new(real: IpNetwork, remapped: IpNetwork) -> Result<Self> {
        Prefix::canonical(real)?;
        Prefix::canonical(remapped)?;
        if Family::of_net(real) != Family::of_net(remapped) {
            return Err(Error::FamilyMismatch {
                subject: format!("real cidr {real}"),
                other: format!("remapped cidr {remapped}"),
            });
        }
        if real.prefix() != remapped.prefix() {
            return Err(Error::MappingMismatch { real, remapped });
        }
        Ok(Self { real, remapped })
    }

    /// The identity mapping of `cidr` (a CIDR that was not remapped).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when `cidr` has host bits set.
    pub fn identity(cidr: IpNetwork) -> Result<Self> {
        Self::new(cidr, cidr)
    }

    /// The real CIDR (as the remote cluster uses it).
    #[must_use]
    pub fn real(&self) -> IpNetwork {
        self.real
    }

    /// The remapped CIDR (as the local cluster sees the remote one).
    #[must_use]
    pub fn remapped(&self) -> IpNetwork {
        self.remapped
    }

    /// Whether the mapping translates nothing (real and remapped CIDRs are the same).
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.real == self.remapped
    }

    /// Translates an address of the real CIDR into the remapped CIDR.
    ///
    /// # Errors
    ///
    /// [`Error::IpOutsideNetwork`] when `addr` is not in the real CIDR.
    pub fn to_remapped(&self, addr: IpAddr) -> Result<IpAddr> {
        translate(self.real, self.remapped, addr)
    }

    /// Translates an address of the remapped CIDR back into the real CIDR.
    ///
    /// # Errors
    ///
    /// [`Error::IpOutsideNetwork`] when `addr` is not in the remapped CIDR.
    pub fn to_real(&self, addr: IpAddr) -> Result<IpAddr> {
        translate(self.remapped, self.real, addr)
    }

    /// Translates a prefix inside the real CIDR (the real CIDR itself included) into the
    /// remapped CIDR, keeping its length.
    ///
    /// # Errors
    ///
    /// [`Error::CidrOutsideNetwork`] when `prefix` is not inside the real CIDR.
    pub fn prefix_to_remapped(&self, prefix: IpNetwork) -> Result<IpNetwork> {
        translate_prefix(self.real, self.remapped, prefix)
    }

    /// Translates a prefix inside the remapped CIDR back into the real CIDR.
    ///
    /// # Errors
    ///
    /// [`Error::CidrOutsideNetwork`] when `prefix` is not inside the remapped CIDR.
    pub fn prefix_to_real(&self, prefix: IpNetwork) -> Result<IpNetwork> {
        translate_prefix(self.remapped, self.real, prefix)
    }
}

/// Whether `addr` lies in the canonical network `net`.
fn within(net: IpNetwork, addr: IpAddr) -> bool {
    let fam = Family::of_net(net);
    Family::of_addr(addr) == fam
        && to_u128(addr) & !host_mask(fam, net.prefix()) == to_u128(net.ip())
}

/// The translation of `addr` from `from` to `to`, or `None` when `addr` is not in `from`.
fn try_translate(from: IpNetwork, to: IpNetwork, addr: IpAddr) -> Option<IpAddr> {
    if !within(from, addr) {
        return None;
    }
    let fam = Family::of_net(from);
    let host = to_u128(addr) & host_mask(fam, from.prefix());
    Some(to_addr(fam, to_u128(to.ip()) | host))
}

fn translate(from: IpNetwork, to: IpNetwork, addr: IpAddr) -> Result<IpAddr> {
    try_translate(from, to, addr).ok_or(Error::IpOutsideNetwork {
        ip: addr,
        network: from,
    })
}

fn translate_prefix(from: IpNetwork, to: IpNetwork, prefix: IpNetwork) -> Result<IpNetwork> {
    if prefix.prefix() < from.prefix() || !within(from, prefix.ip()) {
        return Err(Error::CidrOutsideNetwork {
            cidr: prefix,
            network: from,
        });
    }
    let fam = Family::of_net(from);
    let host = to_u128(prefix.ip()) & host_mask(fam, from.prefix());
    Ok(make_network(fam, to_u128(to.ip()) | host, prefix.prefix()))
}

/// How a peer's pod and external CIDRs are seen locally.
///
/// Translations try the pod mappings first, then the external ones, as upstream's
/// `MapAddressWithNetworkConfiguration` does. An address in none of the CIDRs is not the
/// peer's: the methods return `None` and the caller decides (upstream leaves it unchanged).
///
/// ```
/// use liqo_ipam::remap::{Mapping, RemoteCidrs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let peer = RemoteCidrs {
///     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?],
///     external: vec![Mapping::identity("10.70.0.0/16".parse()?)?],
/// };
/// assert_eq!(peer.to_remapped("10.0.0.9".parse()?), Some("10.1.0.9".parse()?));
/// assert_eq!(peer.to_remapped("10.70.0.9".parse()?), Some("10.70.0.9".parse()?));
/// assert_eq!(peer.to_real("10.1.0.9".parse()?), Some("10.0.0.9".parse()?));
/// assert_eq!(peer.to_remapped("192.168.1.1".parse()?), None);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteCidrs {
    /// The mappings of the peer's pod CIDRs.
    pub pod: Vec<Mapping>,
    /// The mappings of the peer's external CIDRs.
    pub external: Vec<Mapping>,
}

impl RemoteCidrs {
    /// Translates an address of one of the peer's real CIDRs into the local view, or `None`
    /// when the address is in none of them.
    #[must_use]
    pub fn to_remapped(&self, addr: IpAddr) -> Option<IpAddr> {
        self.mappings()
            .find_map(|m| try_translate(m.real, m.remapped, addr))
    }

    /// Translates an address of one of the remapped CIDRs back into the peer's real address,
    /// or `None` when the address is in none of them.
    #[must_use]
    pub fn to_real(&self, addr: IpAddr) -> Option<IpAddr> {
        self.mappings()
            .find_map(|m| try_translate(m.remapped, m.real, addr))
    }

    /// All mappings, pod ones first.
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> + '_ {
        self.pod.iter().chain(&self.external)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn m(real: &str, remapped: &str) -> Mapping {
        Mapping::new(net(real), net(remapped)).unwrap()
    }

    #[test]
    fn v4_both_directions() {
        // Upstream's example: 10.1.0.1 in 10.0.0.0/10 seen through 40.0.0.0/10.
        let map = m("10.0.0.0/10", "40.0.0.0/10");
        assert_eq!(map.to_remapped(ip("10.1.0.1")).unwrap(), ip("40.1.0.1"));
        assert_eq!(map.to_real(ip("40.1.0.1")).unwrap(), ip("10.1.0.1"));
        let map = m("10.255.0.0/18", "78.5.64.0/18");
        assert_eq!(map.to_remapped(ip("10.255.1.1")).unwrap(), ip("78.5.65.1"));
        assert_eq!(
            map.prefix_to_remapped(net("10.255.32.0/19")).unwrap(),
            net("78.5.96.0/19")
        );
        assert_eq!(
            map.prefix_to_real(net("78.5.96.0/19")).unwrap(),
            net("10.255.32.0/19")
        );
        assert_eq!(
            map.prefix_to_remapped(net("10.255.0.0/18")).unwrap(),
            net("78.5.64.0/18")
        );
        assert_eq!(
            map.prefix_to_remapped(net("10.255.1.1/32")).unwrap(),
            net("78.5.65.1/32")
        );
        assert!(!map.is_identity());
    }

    #[test]
    fn v6_both_directions() {
        let map = m("fd00:1::/64", "fd00:2::/64");
        assert_eq!(
            map.to_remapped(ip("fd00:1::abcd")).unwrap(),
            ip("fd00:2::abcd")
        );
        assert_eq!(map.to_real(ip("fd00:2::abcd")).unwrap(), ip("fd00:1::abcd"));
        assert_eq!(
            map.prefix_to_remapped(net("fd00:1::ff00/120")).unwrap(),
            net("fd00:2::ff00/120")
        );
        assert!(matches!(
            map.to_remapped(ip("10.0.0.1")),
            Err(Error::IpOutsideNetwork { .. })
        ));
    }

    #[test]
    fn edge_lengths() {
        // /0: every address is host bits, the translation is the identity.
        let all = m("0.0.0.0/0", "0.0.0.0/0");
        assert!(all.is_identity());
        assert_eq!(all.to_remapped(ip("1.2.3.4")).unwrap(), ip("1.2.3.4"));
        let all6 = m("::/0", "::/0");
        assert_eq!(all6.to_real(ip("ffff::1")).unwrap(), ip("ffff::1"));
        // /32 and /128: single addresses.
        let one = m("10.0.0.1/32", "192.168.0.9/32");
        assert_eq!(one.to_remapped(ip("10.0.0.1")).unwrap(), ip("192.168.0.9"));
        assert!(one.to_remapped(ip("10.0.0.2")).is_err());
        assert_eq!(
            one.prefix_to_real(net("192.168.0.9/32")).unwrap(),
            net("10.0.0.1/32")
        );
        let one6 = m("fd00::1/128", "fd00::2/128");
        assert_eq!(one6.to_real(ip("fd00::2")).unwrap(), ip("fd00::1"));
        let top = m("::/1", "8000::/1");
        assert_eq!(top.to_remapped(ip("7fff::1")).unwrap(), ip("ffff::1"));
    }

    #[test]
    fn bad_mappings_and_inputs() {
        assert!(matches!(
            Mapping::new(net("10.0.0.0/16"), net("10.1.0.0/24")),
            Err(Error::MappingMismatch { .. })
        ));
        assert!(matches!(
            Mapping::new(net("10.0.0.0/16"), net("fd00::/16")),
            Err(Error::FamilyMismatch { .. })
        ));
        assert!(matches!(
            Mapping::new(net("10.0.0.1/16"), net("10.1.0.0/16")),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            Mapping::new(net("10.0.0.0/16"), net("10.1.0.1/16")),
            Err(Error::InvalidCidr { .. })
        ));
        let map = m("10.0.0.0/16", "10.1.0.0/16");
        assert!(matches!(
            map.to_real(ip("10.0.0.1")),
            Err(Error::IpOutsideNetwork { .. })
        ));
        assert!(matches!(
            map.prefix_to_remapped(net("10.0.0.0/8")),
            Err(Error::CidrOutsideNetwork { .. })
        ));
        assert!(matches!(
            map.prefix_to_remapped(net("10.2.0.0/24")),
            Err(Error::CidrOutsideNetwork { .. })
        ));
        assert!(matches!(
            map.prefix_to_remapped(net("fd00::/120")),
            Err(Error::CidrOutsideNetwork { .. })
        ));
    }

    #[test]
    fn remote_cidrs_try_pod_then_external() {
        // Overlapping pod and external real CIDRs: the pod mapping wins, as upstream.
        let peer = RemoteCidrs {
            pod: vec![
                m("10.0.0.0/16", "10.1.0.0/16"),
                m("fd00::/64", "fd00:0:0:9::/64"),
            ],
            external: vec![m("10.0.0.0/8", "11.0.0.0/8")],
        };
        assert_eq!(peer.to_remapped(ip("10.0.0.5")), Some(ip("10.1.0.5")));
        assert_eq!(peer.to_remapped(ip("10.9.0.5")), Some(ip("11.9.0.5")));
        assert_eq!(peer.to_remapped(ip("fd00::5")), Some(ip("fd00:0:0:9::5")));
        assert_eq!(peer.to_real(ip("11.9.0.5")), Some(ip("10.9.0.5")));
        assert_eq!(peer.to_real(ip("fd00:0:0:9::5")), Some(ip("fd00::5")));
        assert_eq!(peer.to_real(ip("192.168.0.1")), None);
        assert_eq!(RemoteCidrs::default().to_remapped(ip("10.0.0.1")), None);
        assert_eq!(peer.mappings().count(), 3);
    }
}
