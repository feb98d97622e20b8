//! Pure decisions of namespace offloading: remote names, cluster selection, status.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use liqo_core::{
    api::offloading::v1beta1::{
        ConditionStatus, MappingPhase, NamespaceMappingStrategy, NamespaceOffloadingSpec,
        NamespaceOffloadingStatus, OffloadingPhase, RemoteNamespaceCondition,
        RemoteNamespaceConditionType, RemoteNamespaceStatus,
    },
    ids::{ClusterId, validate_namespace_name},
};

/// The name of the twin of namespace `namespace` in the providers, per
/// `namespaceMappingStrategy`: `DefaultName` = `<namespace>-<local cluster id>`,
/// `EnforceSameName` = `<namespace>`, `SelectedName` = `spec.remoteNamespaceName`. The error
/// says what to fix.
///
/// ```
/// use liqo_core::api::offloading::v1beta1::{NamespaceMappingStrategy, NamespaceOffloadingSpec};
/// use liqo_reflect::offloading::plan::remote_namespace_name;
///
/// let rome = "rome".parse().unwrap();
/// let spec = NamespaceOffloadingSpec::default();
/// assert_eq!(remote_namespace_name("demo", &spec, &rome).unwrap(), "demo-rome");
/// let same = NamespaceOffloadingSpec {
///     namespace_mapping_strategy: NamespaceMappingStrategy::EnforceSameName,
///     ..NamespaceOffloadingSpec::default()
/// };
/// assert_eq!(remote_namespace_name("demo", &same, &rome).unwrap(), "demo");
/// ```
pub fn remote_namespace_name(
    namespace: &str,
    spec: &NamespaceOffloadingSpec,
    local_cluster: &ClusterId,
) -> Result<String, String> {
    let name = match spec.namespace_mapping_strategy {
        NamespaceMappingStrategy::DefaultName => format!("{namespace}-{local_cluster}"),
        NamespaceMappingStrategy::EnforceSameName => namespace.to_owned(),
        NamespaceMappingStrategy::SelectedName => match spec.remote_namespace_name.as_deref() {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => {
                return Err(
                    "namespaceMappingStrategy SelectedName needs spec.remoteNamespaceName"
                        .to_owned(),
                );
            }
        },
    };
    validate_namespace_name(&name).map_err(|e| format!("remote namespace name {name:?}: {e}"))?;
    Ok(name)
}

fn requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&req.key);
    let values = req.values.as_deref().unwrap_or_default();
    let as_int = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!(
            (value.and_then(|v| as_int(v)), values.first().and_then(|v| as_int(v))),
            (Some(v), Some(bound)) if v > bound
        ),
        "Lt" => matches!(
            (value.and_then(|v| as_int(v)), values.first().and_then(|v| as_int(v))),
            (Some(v), Some(bound)) if v < bound
        ),
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>) -> bool {
    term.match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, labels))
}

/// Whether a VirtualNode with `labels` is selected by `selector`: terms are ORed, the
/// requirements of a term ANDed (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`); no
/// selector, or one without terms, selects every cluster.
///
/// ```
/// use k8s_openapi::api::core::v1::NodeSelector;
/// use liqo_reflect::offloading::plan::selector_matches;
///
/// let selector: NodeSelector = serde_json::from_value(serde_json::json!({"nodeSelectorTerms": [
///     {"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]},
///     {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
/// ]})).unwrap();
/// let south = [("topology.liqo.io/region".to_owned(), "south".to_owned())].into();
/// let north = [("topology.liqo.io/region".to_owned(), "north".to_owned())].into();
/// assert!(selector_matches(Some(&selector), &south));
/// assert!(!selector_matches(Some(&selector), &north));
/// assert!(selector_matches(None, &north));
/// ```
pub fn selector_matches(
    selector: Option<&NodeSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    match selector {
        None => true,
        Some(s) if s.node_selector_terms.is_empty() => true,
        Some(s) => s
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels)),
    }
}

/// What the controller knows about one provider cluster for a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Whether the cluster is selected by the `clusterSelector`.
    pub selected: bool,
    /// The state of the namespace's mapping in the cluster's NamespaceMap status.
    pub mapping: Option<RemoteNamespaceStatus>,
}

fn remote_condition(
    type_: RemoteNamespaceConditionType,
    status: bool,
    reason: &str,
    message: String,
    previous: Option<&Vec<RemoteNamespaceCondition>>,
    now: Timestamp,
) -> RemoteNamespaceCondition {
    let status = if status {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let transition = previous
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    RemoteNamespaceCondition {
        type_,
        status,
        last_transition_time: Some(transition),
        reason: Some(reason.to_owned()),
        message: Some(message),
    }
}

/// The conditions of the clusters `selected` when the remote namespace name is invalid
/// (`message` says why): `OffloadingRequired` True and `Ready` False with reason
/// `InvalidRemoteName`, so the status says what is wrong instead of only `AllFailed`.
#[must_use]
pub fn invalid_name_conditions(
    selected: &[String],
    message: &str,
    now: Timestamp,
) -> BTreeMap<String, Vec<RemoteNamespaceCondition>> {
    selected
        .iter()
        .map(|id| {
            (
                id.clone(),
                vec![
                    remote_condition(
                        RemoteNamespaceConditionType::OffloadingRequired,
                        true,
                        "ClusterSelected",
                        "the cluster is selected by the clusterSelector".to_owned(),
                        None,
                        now,
                    ),
                    remote_condition(
                        RemoteNamespaceConditionType::Ready,
                        false,
                        "InvalidRemoteName",
                        message.to_owned(),
                        None,
                        now,
                    ),
                ],
            )
        })
        .collect()
}

/// The status of a NamespaceOffloading: per cluster, `OffloadingRequired` (selected or not)
/// and `Ready` (the remote namespace is `Accepted`); `offloadingPhase` = `NoClusterSelected`,
/// `Ready` (all selected ready), `AllFailed` / `SomeFailed` (mappings in
/// `CreationLoopBackOff`) or `InProgress`; `Terminating` while being deleted.
pub fn offloading_status(
    remote_name: &str,
    clusters: &BTreeMap<ClusterId, ClusterView>,
    terminating: bool,
    previous: Option<&NamespaceOffloadingStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> NamespaceOffloadingStatus {
    let mut conditions = BTreeMap::new();
    let (mut selected, mut ready, mut failed) = (0, 0, 0);
    for (id, view) in clusters {
        let prev = previous.and_then(|p| p.remote_namespaces_conditions.get(id.as_str()));
        let phase = view.mapping.as_ref().and_then(|m| m.phase);
        let required = remote_condition(
            RemoteNamespaceConditionType::OffloadingRequired,
            view.selected,
            if view.selected {
                "ClusterSelected"
            } else {
                "ClusterNotSelected"
            },
            if view.selected {
                format!("cluster {id} is selected by the clusterSelector")
            } else {
                format!("cluster {id} is not selected by the clusterSelector")
            },
            prev,
            now,
        );
        let is_ready = view.selected && phase == Some(MappingPhase::Accepted);
        let (reason, message) = match (view.selected, phase) {
            (false, _) => (
                "OffloadingNotRequired",
                format!("no namespace required in cluster {id}"),
            ),
            (true, Some(MappingPhase::Accepted)) => (
                "NamespaceCreated",
                format!("namespace {remote_name} is ready in cluster {id}"),
            ),
            (true, Some(MappingPhase::CreationLoopBackOff)) => (
                "CreationLoopBackOff",
                format!(
                    "cluster {id} cannot create namespace {remote_name} (does it already exist \
                     there, not created by Liqo?)"
                ),
            ),
            (true, Some(MappingPhase::Terminating)) => (
                "NamespaceTerminating",
                format!("namespace {remote_name} is being deleted in cluster {id}"),
            ),
            (true, None) => (
                "NamespaceNotReady",
                format!("waiting for cluster {id} to create namespace {remote_name}"),
            ),
        };
        let ready_condition = remote_condition(
            RemoteNamespaceConditionType::Ready,
            is_ready,
            reason,
            message,
            prev,
            now,
        );
        if view.selected {
            selected += 1;
            if is_ready {
                ready += 1;
            }
            if phase == Some(MappingPhase::CreationLoopBackOff) {
                failed += 1;
            }
        }
        conditions.insert(id.to_string(), vec![required, ready_condition]);
    }
    let phase = if terminating {
        OffloadingPhase::Terminating
    } else if selected == 0 {
        OffloadingPhase::NoClusterSelected
    } else if ready == selected {
        OffloadingPhase::Ready
    } else if failed == selected {
        OffloadingPhase::AllFailed
    } else if failed > 0 {
        OffloadingPhase::SomeFailed
    } else {
        OffloadingPhase::InProgress
    };
    NamespaceOffloadingStatus {
        remote_namespace_name: Some(remote_name.to_owned()),
        offloading_phase: Some(phase),
        remote_namespaces_conditions: conditions,
        observed_generation: generation,
    }
}

/// Whether the namespace is labelled `liqo.io/scheduling-enabled=true` (the pod webhook acts
/// on it), given the clusters' views: `Some(true)` once a selected cluster has the remote
/// namespace ready, `Some(false)` when no cluster is selected or every selected one failed
/// (a failed offloading is rolled back: pods are not sent towards virtual nodes they cannot
/// run on), `None` (leave the label as it is, maybe set in advance by hand) while in progress.
///
/// ```
/// use std::collections::BTreeMap;
/// use liqo_reflect::offloading::plan::{ClusterView, scheduling_enabled};
///
/// let pending = ClusterView { selected: true, mapping: None };
/// let views = BTreeMap::from([("milan".parse().unwrap(), pending)]);
/// assert_eq!(scheduling_enabled(&views), None);
/// assert_eq!(scheduling_enabled(&BTreeMap::new()), Some(false));
/// ```
#[must_use]
pub fn scheduling_enabled(clusters: &BTreeMap<ClusterId, ClusterView>) -> Option<bool> {
    let selected: Vec<Option<MappingPhase>> = clusters
        .values()
        .filter(|v| v.selected)
        .map(|v| v.mapping.as_ref().and_then(|m| m.phase))
        .collect();
    if selected.contains(&Some(MappingPhase::Accepted)) {
        Some(true)
    } else if selected
        .iter()
        .all(|p| *p == Some(MappingPhase::CreationLoopBackOff))
    {
        // Also when nothing is selected.
        Some(false)
    } else {
        None
    }
}

/// The clusters a namespace needs twins in: those with a VirtualNode selected by `selector`,
/// given each VirtualNode's cluster id and labels.
pub fn selected_clusters<'a>(
    selector: Option<&NodeSelector>,
    virtual_nodes: impl IntoIterator<Item = (&'a ClusterId, &'a BTreeMap<String, String>)>,
) -> BTreeSet<ClusterId> {
    virtual_nodes
        .into_iter()
        .filter(|(_, labels)| selector_matches(selector, labels))
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(s: &str) -> ClusterId {
        s.parse().unwrap()
    }

    #[test]
    fn remote_names() {
        let rome = id("rome");
        let selected = NamespaceOffloadingSpec {
            namespace_mapping_strategy: NamespaceMappingStrategy::SelectedName,
            remote_namespace_name: Some("chosen".into()),
            ..NamespaceOffloadingSpec::default()
        };
        assert_eq!(
            remote_namespace_name("demo", &selected, &rome).unwrap(),
            "chosen"
        );
        let missing = NamespaceOffloadingSpec {
            remote_namespace_name: None,
            ..selected.clone()
        };
        assert!(
            remote_namespace_name("demo", &missing, &rome)
                .unwrap_err()
                .contains("remoteNamespaceName")
        );
        let invalid = NamespaceOffloadingSpec {
            remote_namespace_name: Some("Not_Valid".into()),
            ..selected
        };
        assert!(remote_namespace_name("demo", &invalid, &rome).is_err());
    }

    #[test]
    fn selector_operators() {
        let labels: BTreeMap<String, String> = [
            ("region".to_owned(), "south".to_owned()),
            ("size".to_owned(), "5".to_owned()),
        ]
        .into();
        let sel = |v: serde_json::Value| -> NodeSelector {
            serde_json::from_value(json!({"nodeSelectorTerms": [{"matchExpressions": v}]})).unwrap()
        };
        assert!(selector_matches(
            Some(&sel(
                json!([{"key": "region", "operator": "NotIn", "values": ["north"]}])
            )),
            &labels
        ));
        assert!(!selector_matches(
            Some(&sel(json!([{"key": "region", "operator": "DoesNotExist"}]))),
            &labels
        ));
        assert!(selector_matches(
            Some(&sel(
                json!([{"key": "size", "operator": "Gt", "values": ["3"]}])
            )),
            &labels
        ));
        assert!(!selector_matches(
            Some(&sel(
                json!([{"key": "size", "operator": "Lt", "values": ["3"]}])
            )),
            &labels
        ));
        // ANDed within a term.
        assert!(!selector_matches(
            Some(&sel(json!([
                {"key": "region", "operator": "In", "values": ["south"]},
                {"key": "gpu", "operator": "Exists"},
            ]))),
            &labels
        ));
        let empty = NodeSelector {
            node_selector_terms: vec![],
        };
        assert!(selector_matches(Some(&empty), &labels));
        let north = BTreeMap::from([("region".to_owned(), "north".to_owned())]);
        let (a, b) = (id("naples"), id("milan"));
        let chosen = selected_clusters(
            Some(&sel(
                json!([{"key": "region", "operator": "In", "values": ["south"]}]),
            )),
            [(&a, &labels), (&b, &north)],
        );
        assert_eq!(chosen, BTreeSet::from([id("naples")]));
    }

    fn view(selected: bool, phase: Option<MappingPhase>) -> ClusterView {
        ClusterView {
            selected,
            mapping: phase.map(|p| RemoteNamespaceStatus {
                remote_namespace: Some("demo-rome".into()),
                phase: Some(p),
            }),
        }
    }

    #[test]
    fn phases() {
        let now = Timestamp::now();
        let phase = |clusters: Vec<(&str, ClusterView)>, terminating| {
            let map = clusters.into_iter().map(|(k, v)| (id(k), v)).collect();
            offloading_status("demo-rome", &map, terminating, None, Some(1), now)
                .offloading_phase
                .unwrap()
        };
        assert_eq!(
            phase(vec![("a", view(false, None))], false),
            OffloadingPhase::NoClusterSelected
        );
        assert_eq!(
            phase(
                vec![
                    ("a", view(true, Some(MappingPhase::Accepted))),
                    ("b", view(false, None))
                ],
                false
            ),
            OffloadingPhase::Ready
        );
        assert_eq!(
            phase(
                vec![
                    ("a", view(true, Some(MappingPhase::Accepted))),
                    ("b", view(true, None))
                ],
                false
            ),
            OffloadingPhase::InProgress
        );
        assert_eq!(
            phase(
                vec![
                    ("a", view(true, Some(MappingPhase::Accepted))),
                    ("b", view(true, Some(MappingPhase::CreationLoopBackOff)))
                ],
                false
            ),
            OffloadingPhase::SomeFailed
        );
        assert_eq!(
            phase(
                vec![("a", view(true, Some(MappingPhase::CreationLoopBackOff)))],
                false
            ),
            OffloadingPhase::AllFailed
        );
        assert_eq!(phase(vec![], true), OffloadingPhase::Terminating);
    }

    #[test]
    fn conditions_per_cluster() {
        let now = Timestamp::now();
        let map = BTreeMap::from([
            (id("milan"), view(true, Some(MappingPhase::Accepted))),
            (id("naples"), view(false, None)),
        ]);
        let status = offloading_status("demo-rome", &map, false, None, None, now);
        assert_eq!(status.remote_namespace_name.as_deref(), Some("demo-rome"));
        let milan = &status.remote_namespaces_conditions["milan"];
        assert!(milan.iter().all(|c| c.status == ConditionStatus::True));
        let naples = &status.remote_namespaces_conditions["naples"];
        assert!(naples.iter().all(|c| c.status == ConditionStatus::False));
        // Transition times are kept while statuses do not change.
        let later = Timestamp::from_second(now.as_second() + 100).unwrap();
        let again = offloading_status("demo-rome", &map, false, Some(&status), None, later);
        assert_eq!(
            again.remote_namespaces_conditions,
            status.remote_namespaces_conditions
        );
    }
}
