//! `liqoctl offload namespace` and `liqoctl unoffload namespace`: the NamespaceOffloading
//! `offloading` of a namespace, created (or printed as a manifest) and waited for.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use liqo_core::api::offloading::v1beta1::{
    ConditionStatus, NAMESPACE_OFFLOADING_NAME, NamespaceMappingStrategy, NamespaceOffloading,
    NamespaceOffloadingSpec, NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
    RemoteNamespaceConditionType,
};

use crate::cluster::{Conn, is_404};
use crate::progress::{Progress, wait_for};

/// Flags of `liqoctl offload namespace`.
#[derive(Debug, clap::Args)]
pub(crate) struct OffloadArgs {
    /// The namespace to offload.
    pub(crate) namespace: String,
    /// How remote namespaces are named: DefaultName (<namespace>-<local cluster id>),
    /// EnforceSameName (<namespace>) or SelectedName (--remote-namespace-name).
    #[arg(long, default_value = "DefaultName", value_parser = ["DefaultName", "EnforceSameName", "SelectedName"])]
    pub(crate) namespace_mapping_strategy: String,
    /// The remote namespace name with --namespace-mapping-strategy SelectedName.
    #[arg(long)]
    pub(crate) remote_namespace_name: Option<String>,
    /// Where pods may run: LocalAndRemote, Local (only reflection) or Remote.
    #[arg(long, default_value = "LocalAndRemote", value_parser = ["LocalAndRemote", "Local", "Remote"])]
    pub(crate) pod_offloading_strategy: String,
    /// Selects the clusters (virtual node labels), e.g. 'topology.liqo.io/region=south';
    /// repeat the flag to OR several selectors; inside one, comma-separated terms are ANDed
    /// (key=value, key!=value, key, !key).
    #[arg(long = "selector", short = 'l')]
    pub(crate) selectors: Vec<String>,
    /// Print the manifest instead of applying it (yaml or json); it applies unchanged.
    #[arg(long, short = 'o', value_parser = ["yaml", "json"])]
    pub(crate) output: Option<String>,
    /// Maximum time to wait for the remote namespaces.
    #[arg(long, default_value = "120s", value_parser = crate::progress::parse_duration)]
    pub(crate) timeout: Duration,
}

/// One `--selector` as a node selector term (pure).
pub(crate) fn selector_term(selector: &str) -> anyhow::Result<NodeSelectorTerm> {
    let mut requirements = Vec::new();
    for raw in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let requirement = if let Some((k, v)) = raw.split_once("!=") {
            req(k, "NotIn", Some(v))
        } else if let Some((k, v)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
            req(k, "In", Some(v))
        } else if let Some(k) = raw.strip_prefix('!') {
            req(k, "DoesNotExist", None)
        } else if raw.contains(' ') || raw.contains('(') {
            return Err(anyhow!(
                "selector term {raw:?}: use key=value, key!=value, key or !key (set-based \
                 terms are not supported; repeat --selector to OR values)"
            ));
        } else {
            req(raw, "Exists", None)
        };
        requirements.push(requirement?);
    }
    if requirements.is_empty() {
        anyhow::bail!("empty --selector: pass key=value terms");
    }
    Ok(NodeSelectorTerm {
        match_expressions: Some(requirements),
        match_fields: None,
    })
}

fn req(key: &str, operator: &str, value: Option<&str>) -> anyhow::Result<NodeSelectorRequirement> {
    let key = key.trim();
    if key.is_empty() {
        anyhow::bail!("selector term without a key");
    }
    Ok(NodeSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: value.map(|v| vec![v.trim().to_owned()]),
    })
}

/// The NamespaceOffloading these flags ask for (pure).
pub(crate) fn manifest(args: &OffloadArgs) -> anyhow::Result<NamespaceOffloading> {
    let mapping = match args.namespace_mapping_strategy.as_str() {
        "EnforceSameName" => NamespaceMappingStrategy::EnforceSameName,
        "SelectedName" => NamespaceMappingStrategy::SelectedName,
        _ => NamespaceMappingStrategy::DefaultName,
    };
    if mapping == NamespaceMappingStrategy::SelectedName && args.remote_namespace_name.is_none() {
        anyhow::bail!("--namespace-mapping-strategy SelectedName needs --remote-namespace-name");
    }
    let pods = match args.pod_offloading_strategy.as_str() {
        "Local" => PodOffloadingStrategy::Local,
        "Remote" => PodOffloadingStrategy::Remote,
        _ => PodOffloadingStrategy::LocalAndRemote,
    };
    let terms = args
        .selectors
        .iter()
        .map(|s| selector_term(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut offloading = NamespaceOffloading::new(
        NAMESPACE_OFFLOADING_NAME,
        NamespaceOffloadingSpec {
            namespace_mapping_strategy: mapping,
            remote_namespace_name: args.remote_namespace_name.clone(),
            pod_offloading_strategy: pods,
            cluster_selector: (!terms.is_empty()).then_some(NodeSelector {
                node_selector_terms: terms,
            }),
        },
    );
    offloading.metadata.namespace = Some(args.namespace.clone());
    Ok(offloading)
}

/// What a NamespaceOffloading status says about the clusters: the selected ones (`Ready` or
/// not) and, for each selected cluster that is not ready, why (pure).
pub(crate) fn selected_clusters(status: &NamespaceOffloadingStatus) -> Vec<(String, bool, String)> {
    status
        .remote_namespaces_conditions
        .iter()
        .filter(|(_, conditions)| {
            conditions.iter().any(|c| {
                c.type_ == RemoteNamespaceConditionType::OffloadingRequired
                    && c.status == ConditionStatus::True
            })
        })
        .map(|(id, conditions)| {
            let ready = conditions
                .iter()
                .find(|c| c.type_ == RemoteNamespaceConditionType::Ready);
            (
                id.clone(),
                ready.is_some_and(|c| c.status == ConditionStatus::True),
                ready
                    .and_then(|c| c.message.clone())
                    .unwrap_or_else(|| "no report yet".to_owned()),
            )
        })
        .collect()
}

/// How the wait for the remote namespaces ended, when it did not succeed (a failure the
/// command rolls back).
fn failure(status: &NamespaceOffloadingStatus) -> Option<String> {
    match status.offloading_phase {
        Some(OffloadingPhase::NoClusterSelected) => Some(
            "no peered cluster matches the selector: check the virtual nodes' labels (kubectl \
             get nodes -l liqo.io/type=virtual-node --show-labels)"
                .to_owned(),
        ),
        Some(OffloadingPhase::AllFailed) => {
            let reasons: Vec<String> = selected_clusters(status)
                .into_iter()
                .filter(|(_, ready, _)| !ready)
                .map(|(id, _, why)| format!("{id}: {why}"))
                .collect();
            Some(format!(
                "no remote namespace could be created ({})",
                reasons.join("; ")
            ))
        }
        _ => None,
    }
}

/// `liqoctl offload namespace`: applies the NamespaceOffloading, waits for the status of this
/// generation, and on a definite failure puts back what was there before (no
/// NamespaceOffloading, or the previous spec).
pub(crate) async fn offload(local: &Conn, args: &OffloadArgs) -> anyhow::Result<()> {
    let offloading = manifest(args)?;
    let api: Api<NamespaceOffloading> = Api::namespaced(local.client.clone(), &args.namespace);
    let namespaces: Api<Namespace> = Api::all(local.client.clone());
    let progress = Progress::new(false);
    let previous = progress
        .step(
            format!("NamespaceOffloading {}/offloading", args.namespace),
            async {
                if namespaces.get_opt(&args.namespace).await?.is_none() {
                    anyhow::bail!(
                        "namespace {0} does not exist: create it first (kubectl create namespace {0})",
                        args.namespace
                    );
                }
                let previous = api.get_opt(NAMESPACE_OFFLOADING_NAME).await?;
                let applied = api
                    .patch(
                        NAMESPACE_OFFLOADING_NAME,
                        &PatchParams::apply("liqoctl").force(),
                        &Patch::Apply(&offloading),
                    )
                    .await
                    .with_context(|| {
                        format!("creating the NamespaceOffloading of {}", args.namespace)
                    })?;
                Ok((previous, applied.metadata.generation))
            },
        )
        .await?;
    let (previous, generation) = previous;
    let waited = progress
        .step("remote namespaces ready", async {
            wait_for(
                args.timeout,
                || {
                    format!(
                        "the NamespaceOffloading of {} is not Ready: is liqo-controller-manager \
                         running, and are the selected providers peered? (kubectl get \
                         namespaceoffloading offloading -n {} -o yaml shows the progress)",
                        args.namespace, args.namespace
                    )
                },
                || async {
                    let Some(o) = api.get_opt(NAMESPACE_OFFLOADING_NAME).await? else {
                        return Ok(None);
                    };
                    let Some(status) = o.status else {
                        return Ok(None);
                    };
                    // The status of an older spec says nothing about this one.
                    if status.observed_generation < generation {
                        return Ok(None);
                    }
                    if let Some(why) = failure(&status) {
                        return Ok(Some(Err(why)));
                    }
                    Ok((status.offloading_phase == Some(OffloadingPhase::Ready))
                        .then_some(Ok(status)))
                },
            )
            .await
        })
        .await?;
    let status = match waited {
        Ok(status) => status,
        Err(why) => {
            progress
                .step("rolled back", rollback(&api, &args.namespace, previous))
                .await?;
            anyhow::bail!("{why}");
        }
    };
    let clusters: Vec<String> = selected_clusters(&status)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    progress.info(format!(
        "namespace {} offloaded to {} as {}",
        args.namespace,
        clusters.join(", "),
        status.remote_namespace_name.unwrap_or_default()
    ));
    Ok(())
}

/// Puts back the NamespaceOffloading as it was before a failed `offload`: deleted if there
/// was none (the controller removes what it started), else its previous spec.
async fn rollback(
    api: &Api<NamespaceOffloading>,
    namespace: &str,
    previous: Option<NamespaceOffloading>,
) -> anyhow::Result<()> {
    match previous {
        None => match api
            .delete(NAMESPACE_OFFLOADING_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| {
                format!("deleting the NamespaceOffloading of {namespace} after the failure")
            }),
        },
        Some(old) => {
            let mut restored = NamespaceOffloading::new(NAMESPACE_OFFLOADING_NAME, old.spec);
            restored.metadata.namespace = Some(namespace.to_owned());
            api.patch(
                NAMESPACE_OFFLOADING_NAME,
                &PatchParams::apply("liqoctl").force(),
                &Patch::Apply(&restored),
            )
            .await
            .with_context(|| {
                format!("restoring the previous NamespaceOffloading of {namespace}")
            })?;
            Ok(())
        }
    }
}

/// `liqoctl unoffload namespace`: deletes the NamespaceOffloading and waits until the remote
/// namespaces are gone (pods are then rescheduled locally by their controllers).
pub(crate) async fn unoffload(
    local: &Conn,
    namespace: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(local.client.clone(), namespace);
    let progress = Progress::new(false);
    progress
        .step(
            format!("NamespaceOffloading {namespace}/offloading deleted"),
            async {
                match api
                    .delete(NAMESPACE_OFFLOADING_NAME, &DeleteParams::default())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_404(&e) => Ok(()),
                    Err(e) => Err(e).with_context(|| {
                        format!("deleting the NamespaceOffloading of {namespace}")
                    }),
                }
            },
        )
        .await?;
    progress
        .step("remote namespaces removed", async {
            wait_for(
                timeout,
                || "the NamespaceOffloading is still terminating: is liqo-controller-manager running?".to_owned(),
                || async { Ok(api.get_opt(NAMESPACE_OFFLOADING_NAME).await?.is_none().then_some(())) },
            )
            .await
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(selectors: &[&str]) -> OffloadArgs {
        OffloadArgs {
            namespace: "demo".into(),
            namespace_mapping_strategy: "EnforceSameName".into(),
            remote_namespace_name: None,
            pod_offloading_strategy: "Remote".into(),
            selectors: selectors.iter().map(|s| (*s).to_owned()).collect(),
            output: Some("yaml".into()),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn selectors_become_ored_terms() {
        let m = manifest(&args(&["topology.liqo.io/region=south", "a!=b,c,!d"])).unwrap();
        let terms = m.spec.cluster_selector.unwrap().node_selector_terms;
        assert_eq!(terms.len(), 2);
        let second = terms[1].match_expressions.as_ref().unwrap();
        let ops: Vec<&str> = second.iter().map(|r| r.operator.as_str()).collect();
        assert_eq!(ops, ["NotIn", "Exists", "DoesNotExist"]);
        assert_eq!(m.metadata.name.as_deref(), Some("offloading"));
        assert_eq!(m.metadata.namespace.as_deref(), Some("demo"));
        assert!(selector_term("k in (a,b)").is_err());
        assert!(selector_term("").is_err());
    }

    #[test]
    fn selected_name_needs_a_name() {
        let mut a = args(&[]);
        a.namespace_mapping_strategy = "SelectedName".into();
        assert!(manifest(&a).is_err());
        a.remote_namespace_name = Some("x".into());
        assert!(manifest(&a).is_ok());
    }

    #[test]
    fn the_yaml_manifest_is_a_namespace_offloading() {
        let yaml = serde_yaml::to_string(&manifest(&args(&[])).unwrap()).unwrap();
        assert!(
            yaml.contains("apiVersion: offloading.liqo.io/v1beta1"),
            "{yaml}"
        );
        assert!(yaml.contains("kind: NamespaceOffloading"), "{yaml}");
        assert!(yaml.contains("podOffloadingStrategy: Remote"), "{yaml}");
    }
}
