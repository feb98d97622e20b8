//! The admission decisions of namespace offloading, as pure functions for a webhook server:
//! the pod mutation per `podOffloadingStrategy` ([`mutate_pod`]) and the validation of
//! NamespaceOffloadings ([`validate_namespace_offloading`]).

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Toleration,
};
use liqo_core::{
    api::offloading::v1beta1::{
        ConditionStatus, NAMESPACE_OFFLOADING_NAME, NamespaceMappingStrategy, NamespaceOffloading,
        PodOffloadingStrategy, RemoteNamespaceConditionType,
    },
    labels::{core, offloading},
};

/// The RuntimeClass whose pods are never mutated (it carries its own scheduling constraints).
pub const LIQO_RUNTIME_CLASS: &str = "liqo";

/// The toleration of the virtual-node taint.
pub fn virtual_node_toleration() -> Toleration {
    Toleration {
        key: Some(offloading::VIRTUAL_NODE_TAINT.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(offloading::VIRTUAL_NODE_TAINT_EFFECT.to_owned()),
        ..Toleration::default()
    }
}

fn virtual_node_requirement(operator: &str) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: core::TYPE.to_owned(),
        operator: operator.to_owned(),
        values: Some(vec![core::TYPE_VIRTUAL_NODE.to_owned()]),
    }
}

fn and(a: &NodeSelectorTerm, b: &NodeSelectorTerm) -> NodeSelectorTerm {
    let join = |x: &Option<Vec<NodeSelectorRequirement>>,
                y: &Option<Vec<NodeSelectorRequirement>>| {
        let all: Vec<_> = x
            .iter()
            .flatten()
            .chain(y.iter().flatten())
            .cloned()
            .collect();
        (!all.is_empty()).then_some(all)
    };
    NodeSelectorTerm {
        match_expressions: join(&a.match_expressions, &b.match_expressions),
        match_fields: join(&a.match_fields, &b.match_fields),
    }
}

/// The required node-affinity terms the strategy adds (ORed), or `None` when it adds none.
pub fn strategy_terms(
    strategy: PodOffloadingStrategy,
    selector: Option<&NodeSelector>,
) -> Option<Vec<NodeSelectorTerm>> {
    let selector_terms = selector
        .map(|s| s.node_selector_terms.clone())
        .filter(|t| !t.is_empty());
    match strategy {
        PodOffloadingStrategy::Local => Some(vec![NodeSelectorTerm {
            match_expressions: Some(vec![virtual_node_requirement("NotIn")]),
            match_fields: None,
        }]),
        PodOffloadingStrategy::Remote => {
            let only_virtual = NodeSelectorTerm {
                match_expressions: Some(vec![virtual_node_requirement("In")]),
                match_fields: None,
            };
            Some(
                selector_terms
                    .unwrap_or_else(|| vec![NodeSelectorTerm::default()])
                    .iter()
                    .map(|t| and(t, &only_virtual))
                    .collect(),
            )
        }
        PodOffloadingStrategy::LocalAndRemote => selector_terms.map(|mut terms| {
            terms.push(NodeSelectorTerm {
                match_expressions: Some(vec![virtual_node_requirement("NotIn")]),
                match_fields: None,
            });
            terms
        }),
    }
}

/// The pod as the mutating webhook makes it (upstream `/mutate/pod`): with the `Remote` and
/// `LocalAndRemote` strategies, the virtual-node toleration; with every strategy, its required
/// node affinity ([`strategy_terms`]) ANDed with the pod's own (each existing term combined
/// with each new one): the `Local` strategy keeps pods off virtual nodes. Pods of the `liqo`
/// RuntimeClass are left alone.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use liqo_core::api::offloading::v1beta1::PodOffloadingStrategy;
/// use liqo_reflect::offloading::webhook::mutate_pod;
///
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "spec": {"containers": [{"name": "app", "image": "nginx"}]}
/// })).unwrap();
/// let remote = mutate_pod(&pod, PodOffloadingStrategy::Remote, None);
/// let spec = remote.spec.unwrap();
/// assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("virtual-node.liqo.io/not-allowed"));
/// let terms = spec.affinity.unwrap().node_affinity.unwrap()
///     .required_during_scheduling_ignored_during_execution.unwrap().node_selector_terms;
/// assert_eq!(terms[0].match_expressions.as_ref().unwrap()[0].key, "liqo.io/type");
/// ```
pub fn mutate_pod(
    pod: &Pod,
    strategy: PodOffloadingStrategy,
    selector: Option<&NodeSelector>,
) -> Pod {
    let mut pod = pod.clone();
    let Some(spec) = pod.spec.as_mut() else {
        return pod;
    };
    if spec.runtime_class_name.as_deref() == Some(LIQO_RUNTIME_CLASS) {
        return pod;
    }
    if strategy != PodOffloadingStrategy::Local {
        let toleration = virtual_node_toleration();
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        if !tolerations.contains(&toleration) {
            tolerations.push(toleration);
        }
    }
    let Some(new_terms) = strategy_terms(strategy, selector) else {
        return pod;
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: Vec::new(),
        });
    let existing = std::mem::take(&mut required.node_selector_terms);
    required.node_selector_terms = if existing.is_empty() {
        new_terms
    } else {
        existing
            .iter()
            .flat_map(|e| new_terms.iter().map(move |n| and(e, n)))
            .collect()
    };
    pod
}

/// Why a pod of a namespace with the `Local` strategy is refused, if it is: it names a virtual
/// node (`spec.nodeName`, when `node_is_virtual` says so) or selects virtual nodes by label
/// (`nodeSelector` `liqo.io/type: virtual-node`). `None`: the pod may be created (the
/// mutation keeps it off virtual nodes).
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use liqo_reflect::offloading::webhook::local_strategy_refusal;
///
/// let pinned: Pod = serde_json::from_value(serde_json::json!({
///     "spec": {"nodeName": "milan", "containers": [{"name": "app", "image": "nginx"}]}
/// })).unwrap();
/// assert!(local_strategy_refusal(&pinned, "demo", |n| n == "milan").is_some());
/// assert!(local_strategy_refusal(&pinned, "demo", |_| false).is_none());
/// ```
pub fn local_strategy_refusal(
    pod: &Pod,
    namespace: &str,
    node_is_virtual: impl Fn(&str) -> bool,
) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if spec.runtime_class_name.as_deref() == Some(LIQO_RUNTIME_CLASS) {
        return None;
    }
    let why = |target: String| {
        format!(
            "namespace {namespace} is offloaded with the Local pod offloading strategy: its pods \
             run on local nodes only, and this pod targets {target}; remove that constraint, or \
             change the strategy with `liqoctl offload namespace {namespace} \
             --pod-offloading-strategy LocalAndRemote`"
        )
    };
    if let Some(node) = spec.node_name.as_deref().filter(|n| node_is_virtual(n)) {
        return Some(why(format!("virtual node {node} (spec.nodeName)")));
    }
    let selects_virtual = spec
        .node_selector
        .as_ref()
        .and_then(|s| s.get(core::TYPE))
        .is_some_and(|v| v == core::TYPE_VIRTUAL_NODE);
    selects_virtual.then(|| {
        why(format!(
            "virtual nodes (nodeSelector {}={})",
            core::TYPE,
            core::TYPE_VIRTUAL_NODE
        ))
    })
}

/// Whether pods may be created in a namespace labelled `liqo.io/scheduling-enabled=true`, given
/// its NamespaceOffloading (`None`: there is none): only once at least one remote namespace is
/// ready. The error is the webhook's denial: as the documentation describes, labelling a
/// namespace in advance holds its pods back until offloading is possible (their controllers
/// retry).
///
/// ```
/// use liqo_core::api::offloading::v1beta1::{NamespaceOffloading, NamespaceOffloadingSpec};
/// use liqo_reflect::offloading::webhook::offloading_possible;
///
/// assert!(offloading_possible("demo", None).unwrap_err().contains("liqoctl offload namespace demo"));
/// let pending = NamespaceOffloading::new("offloading", NamespaceOffloadingSpec::default());
/// assert!(offloading_possible("demo", Some(&pending)).is_err());
/// ```
pub fn offloading_possible(
    namespace: &str,
    offloading: Option<&NamespaceOffloading>,
) -> Result<(), String> {
    let label = format!("{}=true", offloading::SCHEDULING_ENABLED);
    let Some(nso) = offloading else {
        return Err(format!(
            "namespace {namespace} is labelled {label} but is not offloaded, so its pods cannot \
             be scheduled yet: run `liqoctl offload namespace {namespace}`, or remove the label \
             to run them locally"
        ));
    };
    let status = nso.status.as_ref();
    let any_ready = status.is_some_and(|s| {
        s.remote_namespaces_conditions.values().any(|conditions| {
            conditions.iter().any(|c| {
                c.type_ == RemoteNamespaceConditionType::Ready && c.status == ConditionStatus::True
            })
        })
    });
    if any_ready {
        return Ok(());
    }
    let phase = status
        .and_then(|s| s.offloading_phase)
        .map_or_else(|| "not processed yet".to_owned(), |p| format!("phase {p}"));
    Err(format!(
        "pod offloading is not possible yet in namespace {namespace} (its NamespaceOffloading \
         is {phase}, no remote namespace is ready); pods are refused until it is, because the \
         namespace is labelled {label}; controllers such as Deployments retry, and `kubectl get \
         namespaceoffloading -n {namespace}` shows the progress"
    ))
}

/// Validates a NamespaceOffloading (upstream `/validate/namespace-offloading`): it must be
/// named `offloading`, `SelectedName` needs `remoteNamespaceName`, and the mapping strategy
/// (and selected name) cannot change on update. The error says what to fix.
///
/// ```
/// use liqo_core::api::offloading::v1beta1::{NamespaceOffloading, NamespaceOffloadingSpec};
/// use liqo_reflect::offloading::webhook::validate_namespace_offloading;
///
/// let good = NamespaceOffloading::new("offloading", NamespaceOffloadingSpec::default());
/// assert!(validate_namespace_offloading(&good, None).is_ok());
/// let bad = NamespaceOffloading::new("other", NamespaceOffloadingSpec::default());
/// assert!(validate_namespace_offloading(&bad, None).is_err());
/// ```
pub fn validate_namespace_offloading(
    new: &NamespaceOffloading,
    old: Option<&NamespaceOffloading>,
) -> Result<(), String> {
    let name = new.metadata.name.as_deref().unwrap_or_default();
    if name != NAMESPACE_OFFLOADING_NAME {
        return Err(format!(
            "a NamespaceOffloading must be named {NAMESPACE_OFFLOADING_NAME:?}, not {name:?}"
        ));
    }
    if new.spec.namespace_mapping_strategy == NamespaceMappingStrategy::SelectedName
        && new
            .spec
            .remote_namespace_name
            .as_deref()
            .is_none_or(str::is_empty)
    {
        return Err(
            "namespaceMappingStrategy SelectedName needs spec.remoteNamespaceName".to_owned(),
        );
    }
    if new.spec.namespace_mapping_strategy == NamespaceMappingStrategy::SelectedName
        && let Some(remote) = new.spec.remote_namespace_name.as_deref()
        && let Err(e) = liqo_core::ids::validate_namespace_name(remote)
    {
        return Err(format!("spec.remoteNamespaceName: {e}"));
    }
    if let Some(selector) = &new.spec.cluster_selector {
        validate_cluster_selector(selector)?;
    }
    if let Some(old) = old {
        if old.spec.namespace_mapping_strategy != new.spec.namespace_mapping_strategy {
            return Err(format!(
                "namespaceMappingStrategy is immutable ({:?}): delete and recreate the \
                 NamespaceOffloading to change it",
                old.spec.namespace_mapping_strategy
            ));
        }
        if old.spec.namespace_mapping_strategy == NamespaceMappingStrategy::SelectedName
            && old.spec.remote_namespace_name != new.spec.remote_namespace_name
        {
            return Err("remoteNamespaceName is immutable".to_owned());
        }
    }
    Ok(())
}

/// Checks a `clusterSelector` as the API server checks a pod's node affinity: known
/// operators, valid label keys, values where the operator needs them (and none where it does
/// not), one integer for `Gt`/`Lt`. An invalid selector would otherwise silently select no
/// cluster.
///
/// # Errors
///
/// A message naming the term, the key and what is wrong.
pub fn validate_cluster_selector(
    selector: &k8s_openapi::api::core::v1::NodeSelector,
) -> Result<(), String> {
    for (i, term) in selector.node_selector_terms.iter().enumerate() {
        for (kind, requirements) in [
            ("matchExpressions", term.match_expressions.as_deref()),
            ("matchFields", term.match_fields.as_deref()),
        ] {
            for r in requirements.unwrap_or_default() {
                let at = format!(
                    "clusterSelector.nodeSelectorTerms[{i}].{kind} \"{}\"",
                    r.key
                );
                if let Err(e) = liqo_core::labels::validate_label_key(&r.key) {
                    return Err(format!("{at}: {e}"));
                }
                let values = r.values.as_deref().unwrap_or_default();
                match r.operator.as_str() {
                    "In" | "NotIn" if values.is_empty() => {
                        return Err(format!("{at}: operator {} needs values", r.operator));
                    }
                    "Exists" | "DoesNotExist" if !values.is_empty() => {
                        return Err(format!("{at}: operator {} takes no values", r.operator));
                    }
                    "Gt" | "Lt" if values.len() != 1 || values[0].parse::<i64>().is_err() => {
                        return Err(format!(
                            "{at}: operator {} needs exactly one integer value",
                            r.operator
                        ));
                    }
                    "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                    other => {
                        return Err(format!(
                            "{at}: unknown operator \"{other}\" (use In, NotIn, Exists, \
                             DoesNotExist, Gt or Lt)"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_core::api::offloading::v1beta1::NamespaceOffloadingSpec;

    #[test]
    fn invalid_cluster_selectors_are_refused() {
        let with = |expr: serde_json::Value| {
            let mut o = NamespaceOffloading::new("offloading", NamespaceOffloadingSpec::default());
            o.spec.cluster_selector = Some(
                serde_json::from_value(
                    json!({"nodeSelectorTerms": [{"matchExpressions": [expr]}]}),
                )
                .unwrap(),
            );
            validate_namespace_offloading(&o, None)
        };
        assert!(
            with(json!({"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}))
                .is_ok()
        );
        let e = with(json!({"key": "region", "operator": "Matches", "values": ["x"]})).unwrap_err();
        assert!(e.contains("unknown operator \"Matches\""), "{e}");
        assert!(with(json!({"key": "bad key!", "operator": "Exists"})).is_err());
        assert!(
            with(json!({"key": "region", "operator": "In"}))
                .unwrap_err()
                .contains("needs values")
        );
        assert!(with(json!({"key": "region", "operator": "Gt", "values": ["x"]})).is_err());
    }
    use serde_json::json;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json!({ "spec": spec })).unwrap()
    }

    fn terms(pod: &Pod) -> Vec<NodeSelectorTerm> {
        pod.spec
            .as_ref()
            .unwrap()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.clone())
            .unwrap_or_default()
    }

    fn south() -> NodeSelector {
        serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]},
        ]}))
        .unwrap()
    }

    #[test]
    fn local_keeps_pods_off_virtual_nodes_and_runtime_class_is_untouched() {
        let p = pod(json!({}));
        let local = mutate_pod(&p, PodOffloadingStrategy::Local, Some(&south()));
        let t = terms(&local);
        assert_eq!(t.len(), 1);
        let req = &t[0].match_expressions.as_ref().unwrap()[0];
        assert_eq!(
            (req.key.as_str(), req.operator.as_str()),
            ("liqo.io/type", "NotIn")
        );
        assert!(local.spec.unwrap().tolerations.is_none());
        let pinned = pod(json!({"nodeName": "milan"}));
        assert!(local_strategy_refusal(&pinned, "d", |n| n == "milan").is_some());
        assert!(local_strategy_refusal(&pinned, "d", |_| false).is_none());
        let selecting = pod(json!({"nodeSelector": {"liqo.io/type": "virtual-node"}}));
        let why = local_strategy_refusal(&selecting, "d", |_| false).unwrap();
        assert!(why.contains("Local pod offloading strategy"), "{why}");
        let liqo = pod(json!({"runtimeClassName": "liqo"}));
        assert_eq!(mutate_pod(&liqo, PodOffloadingStrategy::Remote, None), liqo);
    }

    #[test]
    fn remote_requires_virtual_nodes_matching_the_selector() {
        let m = mutate_pod(
            &pod(json!({})),
            PodOffloadingStrategy::Remote,
            Some(&south()),
        );
        let t = terms(&m);
        assert_eq!(t.len(), 1);
        let keys: Vec<_> = t[0]
            .match_expressions
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| (r.key.as_str(), r.operator.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("topology.liqo.io/region", "In"), ("liqo.io/type", "In")]
        );
        // Idempotent toleration.
        let twice = mutate_pod(&m, PodOffloadingStrategy::Remote, None);
        assert_eq!(twice.spec.unwrap().tolerations.unwrap().len(), 1);
    }

    #[test]
    fn local_and_remote_adds_an_ored_local_term_only_with_a_selector() {
        let plain = mutate_pod(&pod(json!({})), PodOffloadingStrategy::LocalAndRemote, None);
        assert!(terms(&plain).is_empty());
        assert_eq!(
            plain.spec.unwrap().tolerations.unwrap(),
            vec![virtual_node_toleration()]
        );
        let m = mutate_pod(
            &pod(json!({})),
            PodOffloadingStrategy::LocalAndRemote,
            Some(&south()),
        );
        let t = terms(&m);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1].match_expressions.as_ref().unwrap()[0].operator,
            "NotIn"
        );
    }

    #[test]
    fn existing_affinity_is_anded() {
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
            ]}}}}),
        );
        let m = mutate_pod(&p, PodOffloadingStrategy::Remote, None);
        let t = terms(&m);
        assert_eq!(t.len(), 2);
        for term in t {
            let exprs = term.match_expressions.unwrap();
            assert_eq!(exprs.len(), 2);
            assert_eq!(exprs[1].key, "liqo.io/type");
        }
    }

    #[test]
    fn validation() {
        let spec = |strategy, name: Option<&str>| NamespaceOffloadingSpec {
            namespace_mapping_strategy: strategy,
            remote_namespace_name: name.map(str::to_owned),
            ..NamespaceOffloadingSpec::default()
        };
        let nso = |s| NamespaceOffloading::new("offloading", s);
        let selected = nso(spec(NamespaceMappingStrategy::SelectedName, Some("x")));
        assert!(validate_namespace_offloading(&selected, None).is_ok());
        assert!(
            validate_namespace_offloading(
                &nso(spec(NamespaceMappingStrategy::SelectedName, None)),
                None
            )
            .is_err()
        );
        let default = nso(spec(NamespaceMappingStrategy::DefaultName, None));
        let err = validate_namespace_offloading(&default, Some(&selected)).unwrap_err();
        assert!(err.contains("immutable"));
        let renamed = nso(spec(NamespaceMappingStrategy::SelectedName, Some("y")));
        assert!(validate_namespace_offloading(&renamed, Some(&selected)).is_err());
    }
}
