//! Pure decisions of the default ResourceSlice class: what a provider grants.
//!
//! The provider shares `percentage`% of the allocatable resources of its physical nodes. A
//! slice asks for some resources (or none: then [`SharingPolicy::default_resources`] apply);
//! it is granted if, for every resource, the request fits in what is shared minus what other
//! slices already hold. Otherwise it is denied with a message naming each resource that does
//! not fit and what is still available.
//!
//! ```
//! use std::collections::BTreeMap;
//! use liqo_auth::grant::{SharingPolicy, decide_grant, parse_quantity};
//!
//! let policy = SharingPolicy::default(); // 100%, defaults cpu 4, memory 8Gi, pods 110
//! let capacity = BTreeMap::from([
//!     ("cpu".to_owned(), parse_quantity("32")?),
//!     ("memory".to_owned(), parse_quantity("128Gi")?),
//!     ("pods".to_owned(), parse_quantity("220")?),
//! ]);
//! let granted = decide_grant(&policy, &BTreeMap::new(), &capacity, &BTreeMap::new()).unwrap();
//! assert_eq!(granted["cpu"].0, "4");
//! let too_much = BTreeMap::from([("cpu".to_owned(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("64".into()))]);
//! assert!(decide_grant(&policy, &too_much, &capacity, &BTreeMap::new()).is_err());
//! # Ok::<(), liqo_auth::Error>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::{Error, Result};

/// Amounts in thousandths of the base unit (millicores, milli-bytes, milli-pods), so that every
/// Kubernetes quantity is exact.
pub type Milli = liqo_core::quantity::Milli;

/// What the default ResourceSlice class grants.
#[derive(Debug, Clone, PartialEq)]
pub struct SharingPolicy {
    /// Percentage (1..=100) of the physical nodes' allocatable resources that is shared.
    pub percentage: u8,
    /// Resources granted to a slice that asks for none (upstream `--default-node-resources`:
    /// cpu 4, memory 8Gi, pods 110).
    pub default_resources: BTreeMap<String, Quantity>,
}

impl Default for SharingPolicy {
    fn default() -> Self {
        Self {
            percentage: 100,
            default_resources: BTreeMap::from([
                ("cpu".to_owned(), Quantity("4".into())),
                ("memory".to_owned(), Quantity("8Gi".into())),
                ("pods".to_owned(), Quantity("110".into())),
            ]),
        }
    }
}

/// Parses a Kubernetes quantity (`500m`, `4`, `1.5`, `8Gi`, `1e3`, `10M`) into thousandths
/// ([`liqo_core::quantity::parse`]).
///
/// # Errors
///
/// [`Error::Quantity`] for anything else.
pub fn parse_quantity(text: &str) -> Result<Milli> {
    liqo_core::quantity::parse(text)
        .map_err(|_| Error::Quantity(text.to_owned(), "a Kubernetes quantity".to_owned()))
}

/// Formats thousandths as a quantity: whole units when exact (`4`), else millis (`500m`).
pub fn format_milli(value: Milli) -> Quantity {
    liqo_core::quantity::format_milli(value)
}

/// Sums resource maps (e.g. the allocatable of every node or the grants of every slice).
///
/// # Errors
///
/// [`Error::Quantity`] for an unparsable quantity.
pub fn sum<'a>(
    maps: impl IntoIterator<Item = &'a BTreeMap<String, Quantity>>,
) -> Result<BTreeMap<String, Milli>> {
    liqo_core::quantity::sum(maps).map_err(|e| match e {
        liqo_core::Error::InvalidQuantity { text } => {
            Error::Quantity(text, "a Kubernetes quantity".to_owned())
        }
        other => Error::Backend(Box::new(other)),
    })
}

/// Decides the grant of a default-class ResourceSlice.
///
/// `requested` is the slice's `spec.resources` (empty: the policy's defaults), `capacity` the
/// allocatable of the provider's physical nodes, `in_use` what the other slices already hold.
/// Returns the granted resources (the request, or the defaults) or a message saying which
/// resources do not fit and what is left.
///
/// # Errors
///
/// A human-readable refusal.
pub fn decide_grant(
    policy: &SharingPolicy,
    requested: &BTreeMap<String, Quantity>,
    capacity: &BTreeMap<String, Milli>,
    in_use: &BTreeMap<String, Milli>,
) -> std::result::Result<BTreeMap<String, Quantity>, String> {
    let wanted = if requested.is_empty() {
        &policy.default_resources
    } else {
        requested
    };
    let mut refusals = Vec::new();
    for (name, quantity) in wanted {
        let amount = match parse_quantity(&quantity.0) {
            Ok(v) if v >= 0 => v,
            _ => {
                refusals.push(format!("{name}: {:?} is not a valid quantity", quantity.0));
                continue;
            }
        };
        // Only resources the provider measures are limited (cpu, memory, pods, ...).
        let Some(cap) = capacity.get(name) else {
            continue;
        };
        let shared = cap * i128::from(policy.percentage.min(100)) / 100;
        let available = (shared - in_use.get(name).copied().unwrap_or(0)).max(0);
        if amount > available {
            refusals.push(format!(
                "{name}: requested {} but only {} is available ({}% of {} shared, {} already granted)",
                quantity.0,
                format_milli(available).0,
                policy.percentage,
                format_milli(*cap).0,
                format_milli(in_use.get(name).copied().unwrap_or(0)).0,
            ));
        }
    }
    if refusals.is_empty() {
        Ok(wanted.clone())
    } else {
        Err(refusals.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn quantities_parse_exactly() {
        assert_eq!(parse_quantity("500m").unwrap(), 500);
        assert_eq!(parse_quantity("4").unwrap(), 4000);
        assert_eq!(parse_quantity("1.5").unwrap(), 1500);
        assert_eq!(parse_quantity("8Gi").unwrap(), 8 * (1 << 30) * 1000);
        assert_eq!(parse_quantity("1k").unwrap(), 1_000_000);
        assert_eq!(parse_quantity("1e3").unwrap(), 1_000_000);
        assert_eq!(parse_quantity("0.5Gi").unwrap(), (1 << 29) * 1000);
        assert!(parse_quantity("").is_err());
        assert!(parse_quantity("abc").is_err());
        assert!(parse_quantity("1Xi").is_err());
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format_milli(4000).0, "4");
        assert_eq!(format_milli(250).0, "250m");
    }

    fn capacity() -> BTreeMap<String, Milli> {
        sum([&BTreeMap::from([
            ("cpu".to_owned(), q("32")),
            ("memory".to_owned(), q("128Gi")),
            ("pods".to_owned(), q("220")),
        ])])
        .unwrap()
    }

    #[test]
    fn empty_request_gets_the_defaults() {
        let g = decide_grant(
            &SharingPolicy::default(),
            &BTreeMap::new(),
            &capacity(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(g["cpu"], q("4"));
        assert_eq!(g["memory"], q("8Gi"));
        assert_eq!(g["pods"], q("110"));
    }

    #[test]
    fn percentage_and_other_grants_limit_the_request() {
        let policy = SharingPolicy {
            percentage: 50,
            ..SharingPolicy::default()
        };
        let req = BTreeMap::from([("cpu".to_owned(), q("16"))]);
        assert!(decide_grant(&policy, &req, &capacity(), &BTreeMap::new()).is_ok());
        let used = BTreeMap::from([("cpu".to_owned(), 1)]);
        let err = decide_grant(&policy, &req, &capacity(), &used).unwrap_err();
        assert!(err.contains("cpu: requested 16"), "{err}");
        assert!(err.contains("50% of 32"), "{err}");
    }

    #[test]
    fn invalid_and_unknown_resources() {
        let req = BTreeMap::from([
            ("cpu".to_owned(), q("x")),
            ("nvidia.com/gpu".to_owned(), q("1")),
        ]);
        let err = decide_grant(
            &SharingPolicy::default(),
            &req,
            &capacity(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("not a valid quantity"));
        assert!(!err.contains("gpu"));
    }
}
