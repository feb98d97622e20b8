//! Cluster labels: what a provider says about itself (upstream `--cluster-labels`), published
//! in `ResourceSlice.status.nodeLabels` and put by the consumer on the virtual node, so that
//! NamespaceOffloading cluster selectors and pod affinities can pick clusters by them
//! (e.g. `topology.liqo.io/region=south`). Pure.
//!
//! ```
//! use liqo_auth::cluster_labels;
//!
//! let labels = cluster_labels::parse("topology.liqo.io/region=south,tier=gold")?;
//! assert_eq!(labels["topology.liqo.io/region"], "south");
//! assert!(cluster_labels::parse("region").is_err()); // no '='
//! # Ok::<(), liqo_auth::Error>(())
//! ```

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Parses `key1=value1,key2=value2` (upstream's string-map flag syntax): the first `=` of each
/// item separates key and value; empty items are ignored. Keys and values must be valid
/// Kubernetes label keys and values (they become labels of the consumer's virtual node); a key
/// given twice is an error.
pub fn parse(input: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in input.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let invalid = |reason: String| Error::InvalidClusterLabel {
            item: item.to_owned(),
            reason,
        };
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| invalid("missing '=': write key=value".into()))?;
        check_key(key).map_err(invalid)?;
        check_value(value).map_err(invalid)?;
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(invalid(format!("label {key:?} given twice")));
        }
    }
    Ok(out)
}

/// The labels written back as `--cluster-labels` takes them (`k=v,...`, sorted by key), so
/// that [`parse`] reads them again.
///
/// ```
/// use liqo_auth::cluster_labels;
///
/// let labels = cluster_labels::parse("tier=gold,topology.liqo.io/region=south")?;
/// assert_eq!(cluster_labels::format(&labels), "tier=gold,topology.liqo.io/region=south");
/// assert_eq!(cluster_labels::parse(&cluster_labels::format(&labels))?, labels);
/// # Ok::<(), liqo_auth::Error>(())
/// ```
pub fn format(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The JSON merge patch of `status.nodeLabels` turning `current` into `desired` (keys that are
/// no longer wanted set to null), or `None` when they are equal.
pub fn node_labels_patch(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Option<serde_json::Value> {
    if current == desired {
        return None;
    }
    let mut patch = serde_json::Map::new();
    for (k, v) in desired {
        if current.get(k) != Some(v) {
            patch.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    for k in current.keys().filter(|k| !desired.contains_key(*k)) {
        patch.insert(k.clone(), serde_json::Value::Null);
    }
    Some(serde_json::Value::Object(patch))
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || key.ends_with('/') {
        return Err("empty label key: write key=value".into());
    }
    liqo_core::labels::validate_label_key(key).map_err(|e| e.to_string())
}

fn check_value(value: &str) -> std::result::Result<(), String> {
    liqo_core::labels::validate_label_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_upstream_syntax() {
        let l = parse("topology.liqo.io/region=south, tier=gold,,empty=").unwrap();
        assert_eq!(
            l,
            BTreeMap::from([
                ("topology.liqo.io/region".to_owned(), "south".to_owned()),
                ("tier".to_owned(), "gold".to_owned()),
                ("empty".to_owned(), String::new()),
            ])
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_input_saying_what_is_wrong() {
        let e = parse("topology.liqo.io/region").unwrap_err().to_string();
        assert!(
            e.contains("topology.liqo.io/region") && e.contains("missing '='"),
            "{e}"
        );
        for bad in [
            "=south",
            "a/=b",
            "Upper.Case/k=v",
            "-k=v",
            "k=v w",
            "k=a=b",
            "k=-v",
            "a=1,a=2",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("k={}", "v".repeat(64));
        assert!(parse(&long).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn node_labels_patch_adds_changes_and_removes() {
        let cur = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("gone".to_owned(), "x".to_owned()),
        ]);
        let want = BTreeMap::from([
            ("a".to_owned(), "2".to_owned()),
            ("new".to_owned(), "y".to_owned()),
        ]);
        assert_eq!(
            node_labels_patch(&cur, &want).unwrap(),
            serde_json::json!({"a": "2", "new": "y", "gone": null})
        );
        assert!(node_labels_patch(&want, &want).is_none());
    }
}
