//! The crate's error type.
//!
//! Every fallible function of liqo-ipam returns [`Error`]. Messages are lowercase, say what is
//! wrong and, where there is something to do about it, what to do; controllers copy them into
//! the status conditions of Network and IP resources. [`Error::is_transient`] tells a caller
//! whether retrying the same operation later can succeed on its own.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CIDR is malformed or not in canonical form (host bits set).
    #[error("invalid cidr {cidr:?}: {reason}")]
    InvalidCidr {
        /// The CIDR as given.
        cidr: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },

    /// A prefix length is out of range for its address family (above 32 for IPv4, above 128
    /// for IPv6).
    #[error(
        "invalid prefix length /{prefix_len} in {cidr:?}: the longest prefix of this address family is /{max}"
    )]
    InvalidPrefixLength {
        /// The CIDR as given.
        cidr: String,
        /// The prefix length found.
        prefix_len: u32,
        /// The largest prefix length of the address family.
        max: u8,
    },

    /// The allocator was configured without any pool.
    #[error("no address pool configured: give at least one pool (for example 10.0.0.0/8)")]
    NoPools,

    /// Two configured pools overlap; pools must be disjoint.
    #[error("pools {0} and {1} overlap: configure disjoint pools")]
    OverlappingPools(IpNetwork, IpNetwork),

    /// No free prefix of the requested length is left in any pool of the request's family.
    #[error(
        "no free /{prefix_len} prefix left in pools {}: release unused networks or configure a larger pool",
        display_list(pools)
    )]
    PoolExhausted {
        /// The requested prefix length.
        prefix_len: u8,
        /// The pools searched (those of the request's address family).
        pools: Vec<IpNetwork>,
    },

    /// The exact CIDR asked for cannot be acquired (for example it overlaps a reserved or an
    /// exclusively allocated range).
    #[error("network {cidr} is unavailable: {reason}")]
    Unavailable {
        /// The CIDR asked for.
        cidr: IpNetwork,
        /// Why it cannot be acquired.
        reason: String,
    },

    /// An immutable, exclusive request names a CIDR outside every pool: the allocator only
    /// hands out exclusive networks from its pools.
    #[error(
        "network {0} is outside every pool: request it as shared to reserve it, or make it mutable so it can be remapped"
    )]
    OutsidePools(IpNetwork),

    /// The network is not allocated (an address operation needs an allocated network).
    #[error("network {0} is not allocated: acquire it first")]
    NotAllocated(IpNetwork),

    /// An address does not belong to the network it was given with.
    #[error("address {ip} is outside network {network}")]
    IpOutsideNetwork {
        /// The address.
        ip: IpAddr,
        /// The network it should belong to.
        network: IpNetwork,
    },

    /// A prefix does not lie inside the network it was given with.
    #[error("prefix {cidr} is not inside network {network}")]
    CidrOutsideNetwork {
        /// The prefix.
        cidr: IpNetwork,
        /// The network it should lie inside.
        network: IpNetwork,
    },

    /// The address asked for is already allocated in its network.
    #[error(
        "address {ip} is already allocated in network {network}: ask for another or for any free address"
    )]
    IpUnavailable {
        /// The address.
        ip: IpAddr,
        /// Its network.
        network: IpNetwork,
    },

    /// Every address of the network is allocated.
    #[error(
        "network {0} has no free address left: release unused addresses or use a larger network"
    )]
    NetworkFull(IpNetwork),

    /// More addresses are to be pre-allocated than the network holds.
    #[error(
        "cannot pre-allocate {pre_allocated} addresses in a /{prefix_len} network: lower preAllocated or ask for a shorter prefix"
    )]
    PreAllocatedTooLarge {
        /// How many addresses were to be pre-allocated.
        pre_allocated: u32,
        /// The prefix length of the network.
        prefix_len: u8,
    },

    /// Two values that must belong to the same address family (IPv4 or IPv6) do not.
    #[error(
        "{subject} and {other} belong to different address families: use IPv4 with IPv4, IPv6 with IPv6"
    )]
    FamilyMismatch {
        /// The value in question.
        subject: String,
        /// What it was compared with.
        other: String,
    },

    /// A remapping between two CIDRs of different prefix lengths was asked for.
    #[error(
        "cannot map {real} onto {remapped}: a 1:1 mapping needs both cidrs to have the same prefix length"
    )]
    MappingMismatch {
        /// The real CIDR.
        real: IpNetwork,
        /// The remapped CIDR.
        remapped: IpNetwork,
    },

    /// A call to the Kubernetes API failed.
    #[error("{context}: {}", liqo_core::error::KubeErrorExt::describe(source))]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },

    /// A Kubernetes resource holds a value this crate cannot use.
    #[error("invalid {kind} {name:?}: {reason}")]
    InvalidResource {
        /// The resource kind (for example `Network`).
        kind: &'static str,
        /// The resource name (`namespace/name` when namespaced).
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// Error from a third-party implementation of this crate's trait.
    #[error("backend error: {0}")]
    Backend(#[source] liqo_core::BoxError),
}

impl Error {
    /// Whether retrying the same operation later may succeed without anything else changing:
    /// true for failures talking to the API server or to a third-party backend, false for
    /// invalid input and for conflicts that only a release can resolve.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Kube { .. } | Error::Backend(_))
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn display_list(pools: &[IpNetwork]) -> String {
    if pools.is_empty() {
        return "(none of this address family)".to_owned();
    }
    pools
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_actionable() {
        let pools = vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        let e = Error::PoolExhausted {
            prefix_len: 16,
            pools,
        };
        assert_eq!(
            e.to_string(),
            "no free /16 prefix left in pools 10.0.0.0/8, 192.168.0.0/16: release unused networks \
             or configure a larger pool"
        );
        let e = Error::PoolExhausted {
            prefix_len: 64,
            pools: vec![],
        };
        assert!(e.to_string().contains("(none of this address family)"));
        let e = Error::InvalidPrefixLength {
            cidr: "10.0.0.0/33".into(),
            prefix_len: 33,
            max: 32,
        };
        assert!(e.to_string().starts_with("invalid prefix length /33"));
        assert!(!e.is_transient());
        assert!(Error::Backend("boom".into()).is_transient());
    }
}
