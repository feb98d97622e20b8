//! The NamespaceOffloading controller (consumer side).
//!
//! For the NamespaceOffloading `offloading` of a namespace it:
//! - labels the namespace `liqo.io/scheduling-enabled=true` (the pod webhook acts on those
//!   namespaces) once a remote namespace is ready, and removes the label when no cluster is
//!   selected or all of them failed ([`plan::scheduling_enabled`]): a failed offloading is
//!   rolled back;
//! - adds `desiredMapping[<namespace>] = <remote name>` to the NamespaceMap of every cluster
//!   whose VirtualNode matches the `clusterSelector`, and removes it from the others (the
//!   NamespaceMap of a cluster is created, named after its id, in the VirtualNode's namespace,
//!   labelled for replication to the provider when missing);
//! - writes the status from the NamespaceMaps' `currentMapping` ([`plan::offloading_status`]);
//! - on deletion (finalizer `namespaceoffloading-controller.liqo.io/finalizer`) removes the
//!   label and the mappings, and waits until no provider reports the namespace any more.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{api::core::v1::Namespace, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use liqo_core::{
    api::offloading::v1beta1::{
        NAMESPACE_OFFLOADING_NAME, NamespaceMap, NamespaceMapSpec, NamespaceOffloading, VirtualNode,
    },
    ids::ClusterId,
    labels::{
        TRUE, core,
        offloading::{NAMESPACE_OFFLOADING_FINALIZER, SCHEDULING_ENABLED},
        replication,
    },
    runtime::KeyedBackoff,
};
use tracing::{info, warn};

use super::plan::{self, ClusterView};
use crate::{Error, Result};

/// Settings of the NamespaceOffloading controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Id of the local (consumer) cluster, used by the `DefaultName` mapping strategy.
    pub local_cluster_id: ClusterId,
}

struct Context {
    client: Client,
    config: Config,
    backoff: KeyedBackoff<ObjectRef<NamespaceOffloading>>,
}

/// The NamespaceMaps this cluster writes (not replicas received from peers), by cluster id.
async fn local_maps(client: &Client) -> Result<BTreeMap<ClusterId, NamespaceMap>> {
    let maps = Api::<NamespaceMap>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing NamespaceMaps"))?;
    Ok(maps
        .items
        .into_iter()
        .filter(|m| m.labels().get(replication::REPLICATED).map(String::as_str) != Some(TRUE))
        .filter_map(|m| {
            let id = m
                .labels()
                .get(core::REMOTE_CLUSTER_ID)
                .cloned()
                .unwrap_or_else(|| m.name_any());
            Some((id.parse().ok()?, m))
        })
        .collect())
}

/// The clusters with a VirtualNode, the labels of their virtual Nodes (the provider's labels,
/// `liqo.io/remote-cluster-id` and `liqo.io/type`) and the namespace of their VirtualNodes.
async fn clusters(
    client: &Client,
) -> Result<BTreeMap<ClusterId, Vec<(BTreeMap<String, String>, String)>>> {
    let vns = Api::<VirtualNode>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing VirtualNodes"))?;
    let mut out: BTreeMap<ClusterId, Vec<_>> = BTreeMap::new();
    for vn in vns.items {
        let Some(id): Option<ClusterId> =
            vn.spec.cluster_id.as_deref().and_then(|s| s.parse().ok())
        else {
            continue;
        };
        // The labels of the virtual Node: the provider's, plus its identity labels.
        let mut labels = vn.spec.labels.clone();
        labels.insert(core::REMOTE_CLUSTER_ID.to_owned(), id.to_string());
        labels.insert(core::TYPE.to_owned(), core::TYPE_VIRTUAL_NODE.to_owned());
        out.entry(id)
            .or_default()
            .push((labels, vn.namespace().unwrap_or_default()));
    }
    Ok(out)
}

async fn set_mapping(
    client: &Client,
    existing: Option<&NamespaceMap>,
    cluster: &ClusterId,
    tenant_namespace: &str,
    namespace: &str,
    remote: Option<&str>,
) -> Result<()> {
    let current = existing.and_then(|m| m.spec.desired_mapping.get(namespace));
    if current.map(String::as_str) == remote {
        return Ok(());
    }
    let patch = serde_json::json!({"spec": {"desiredMapping": {namespace: remote}}});
    match existing {
        Some(map) => {
            let api: Api<NamespaceMap> =
                Api::namespaced(client.clone(), &map.namespace().unwrap_or_default());
            api.patch(
                &map.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(Error::kube(format!(
                "updating NamespaceMap of cluster {cluster}"
            )))?;
        }
        None => {
            let Some(remote) = remote else { return Ok(()) };
            let map = NamespaceMap {
                metadata: ObjectMeta {
                    name: Some(cluster.to_string()),
                    namespace: Some(tenant_namespace.to_owned()),
                    labels: Some(
                        [
                            (core::REMOTE_CLUSTER_ID, cluster.as_str()),
                            (replication::REPLICATION, TRUE),
                            (replication::REMOTE_ID, cluster.as_str()),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: NamespaceMapSpec {
                    desired_mapping: [(namespace.to_owned(), remote.to_owned())].into(),
                },
                status: None,
            };
            Api::<NamespaceMap>::namespaced(client.clone(), tenant_namespace)
                .create(&PostParams::default(), &map)
                .await
                .map_err(Error::kube(format!(
                    "creating NamespaceMap of cluster {cluster}"
                )))?;
        }
    }
    Ok(())
}

async fn label_namespace(client: &Client, namespace: &str, enabled: bool) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = api
        .get_opt(namespace)
        .await
        .map_err(Error::kube(format!("reading namespace {namespace}")))?
    else {
        return Ok(());
    };
    let has = ns.labels().get(SCHEDULING_ENABLED).map(String::as_str) == Some(TRUE);
    if has == enabled {
        return Ok(());
    }
    let value = enabled.then_some(TRUE);
    api.patch(
        namespace,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {SCHEDULING_ENABLED: value}}})),
    )
    .await
    .map_err(Error::kube(format!("labelling namespace {namespace}")))?;
    Ok(())
}

async fn set_finalizer(
    api: &Api<NamespaceOffloading>,
    nso: &NamespaceOffloading,
    present: bool,
) -> Result<()> {
    let mut finalizers = nso.finalizers().to_vec();
    let has = finalizers
        .iter()
        .any(|f| f == NAMESPACE_OFFLOADING_FINALIZER);
    if has == present {
        return Ok(());
    }
    if present {
        finalizers.push(NAMESPACE_OFFLOADING_FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != NAMESPACE_OFFLOADING_FINALIZER);
    }
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": nso.resource_version(),
    }});
    api.patch(
        &nso.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube(format!(
        "updating the finalizers of NamespaceOffloading {}/{}",
        nso.namespace().unwrap_or_default(),
        nso.name_any()
    )))?;
    Ok(())
}

async fn reconcile(nso: Arc<NamespaceOffloading>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = nso.namespace().unwrap_or_default();
    let api: Api<NamespaceOffloading> = Api::namespaced(ctx.client.clone(), &namespace);
    if nso.name_any() != NAMESPACE_OFFLOADING_NAME {
        warn!(%namespace, name = %nso.name_any(), "ignoring a NamespaceOffloading not named \"offloading\"");
        return Ok(Action::await_change());
    }
    let terminating = nso.metadata.deletion_timestamp.is_some();
    let maps = local_maps(&ctx.client).await?;
    let clusters = clusters(&ctx.client).await?;
    let remote_name =
        plan::remote_namespace_name(&namespace, &nso.spec, &ctx.config.local_cluster_id);

    if terminating {
        label_namespace(&ctx.client, &namespace, false).await?;
        for (id, map) in &maps {
            set_mapping(&ctx.client, Some(map), id, "", &namespace, None).await?;
        }
        let pending = maps.values().any(|m| {
            m.status
                .as_ref()
                .is_some_and(|s| s.current_mapping.contains_key(&namespace))
        });
        if pending {
            write_status(
                &api,
                &nso,
                &remote_name.unwrap_or_default(),
                &BTreeMap::new(),
                true,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
        set_finalizer(&api, &nso, false).await?;
        info!(%namespace, "namespace no longer offloaded");
        return Ok(Action::await_change());
    }

    set_finalizer(&api, &nso, true).await?;
    let remote_name = match remote_name {
        Ok(name) => name,
        Err(message) => {
            let selected: Vec<String> = clusters
                .iter()
                .filter(|(_, nodes)| {
                    nodes.iter().any(|(labels, _)| {
                        plan::selector_matches(nso.spec.cluster_selector.as_ref(), labels)
                    })
                })
                .map(|(id, _)| id.to_string())
                .collect();
            let conditions = plan::invalid_name_conditions(
                &selected,
                &format!("{message}: choose a shorter namespace name or the SelectedName strategy"),
                k8s_openapi::jiff::Timestamp::now(),
            );
            let status = serde_json::json!({"status": {
                "offloadingPhase": "AllFailed",
                "remoteNamespaceName": null,
                "remoteNamespacesConditions": conditions,
                "observedGeneration": nso.metadata.generation,
            }});
            api.patch_status(
                &nso.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
            .map_err(Error::kube("writing a NamespaceOffloading status"))?;
            return Err(Error::InvalidConfig(format!(
                "NamespaceOffloading {namespace}/offloading: {message}"
            )));
        }
    };
    let mut views = BTreeMap::new();
    for (id, nodes) in &clusters {
        let selected = nodes
            .iter()
            .any(|(labels, _)| plan::selector_matches(nso.spec.cluster_selector.as_ref(), labels));
        let tenant = nodes
            .first()
            .map(|(_, ns)| ns.clone())
            .unwrap_or_else(|| id.tenant_namespace());
        let map = maps.get(id);
        set_mapping(
            &ctx.client,
            map,
            id,
            &tenant,
            &namespace,
            selected.then_some(remote_name.as_str()),
        )
        .await?;
        views.insert(
            id.clone(),
            ClusterView {
                selected,
                mapping: map
                    .and_then(|m| m.status.as_ref())
                    .and_then(|s| s.current_mapping.get(&namespace))
                    .cloned(),
            },
        );
    }
    // Clusters without a VirtualNode any more: drop their mapping.
    for (id, map) in &maps {
        if !clusters.contains_key(id) {
            set_mapping(&ctx.client, Some(map), id, "", &namespace, None).await?;
        }
    }
    // Labelled once a remote namespace is ready (before the status says so, so a client that
    // waited for the status finds pods mutated), unlabelled when the offloading failed.
    if let Some(enabled) = plan::scheduling_enabled(&views) {
        label_namespace(&ctx.client, &namespace, enabled).await?;
    }
    write_status(&api, &nso, &remote_name, &views, false).await?;
    ctx.backoff.reset_object(&nso);
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn write_status(
    api: &Api<NamespaceOffloading>,
    nso: &NamespaceOffloading,
    remote_name: &str,
    views: &BTreeMap<ClusterId, ClusterView>,
    terminating: bool,
) -> Result<()> {
    let status = plan::offloading_status(
        remote_name,
        views,
        terminating,
        nso.status.as_ref(),
        nso.metadata.generation,
        Timestamp::now(),
    );
    if nso.status.as_ref() == Some(&status) {
        return Ok(());
    }
    // Replace the per-cluster map as a whole (clusters that disappeared are removed).
    let mut value = serde_json::to_value(&status).map_err(|source| Error::Serialization {
        what: "a NamespaceOffloading status".to_owned(),
        source,
    })?;
    if let Some(old) = nso.status.as_ref() {
        for id in old.remote_namespaces_conditions.keys() {
            if !status.remote_namespaces_conditions.contains_key(id) {
                value["remoteNamespacesConditions"][id] = serde_json::Value::Null;
            }
        }
    }
    api.patch_status(
        &nso.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": value })),
    )
    .await
    .map_err(Error::kube(format!(
        "writing the status of NamespaceOffloading {}/{}",
        nso.namespace().unwrap_or_default(),
        nso.name_any()
    )))?;
    Ok(())
}

fn error_policy(nso: Arc<NamespaceOffloading>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(namespace = ?nso.namespace(), %error, "NamespaceOffloading reconcile failed");
    ctx.backoff.requeue_object(&nso)
}

/// Runs the NamespaceOffloading controller until `shutdown` resolves.
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_reflect::offloading::namespace_offloading;
///
/// let config = namespace_offloading::Config { local_cluster_id: "rome".parse().unwrap() };
/// namespace_offloading::run(client, config, liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let offloadings: Api<NamespaceOffloading> = Api::all(client.clone());
    let controller = Controller::new(offloadings, watcher::Config::default());
    let every = |store: Store<NamespaceOffloading>| {
        move || {
            store
                .state()
                .iter()
                .map(|o| ObjectRef::from_obj(&**o))
                .collect::<Vec<_>>()
        }
    };
    let all_for_vn = every(controller.store());
    let all_for_map = every(controller.store());
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        backoff: KeyedBackoff::default(),
    });
    let controller = controller
        .watches(
            Api::<VirtualNode>::all(client.clone()),
            watcher::Config::default(),
            move |_vn| all_for_vn(),
        )
        .watches(
            Api::<NamespaceMap>::all(client),
            watcher::Config::default(),
            move |_map| all_for_map(),
        );
    info!("NamespaceOffloading controller running");
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
    info!("NamespaceOffloading controller stopped");
    Ok(())
}
