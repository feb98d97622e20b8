//! The NamespaceMap controller (provider side): creates the twin namespaces a consumer asks
//! for.
//!
//! It acts on the NamespaceMaps replicated from consumers (label `liqo.io/replicated=true` by
//! default, origin cluster in `liqo.io/originID`). For every `desiredMapping` entry it creates
//! the namespace, annotated `liqo.io/managed-by-namespace-map=<map namespace>/<map name>` and
//! `liqo.io/original-name=<consumer namespace>`, labelled `liqo.io/remote-cluster-id=<origin>`,
//! with a RoleBinding (named after the map's namespace, the consumer's tenant namespace) of the
//! ClusterRole `liqo-virtual-kubelet-remote` to the Group `<origin>`; then reports
//! `currentMapping[<ns>] = {remoteNamespace, phase}` (`Accepted`, or `CreationLoopBackOff` when
//! a namespace with that name exists and is not managed by the map). Entries no longer
//! desired, and all of them when the map is deleted (finalizer
//! `namespacemap-controller.liqo.io/finalizer`), get their namespace deleted (`Terminating`
//! until gone).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{RoleBinding, RoleRef, Subject},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use liqo_core::{
    api::offloading::v1beta1::{MappingPhase, NamespaceMap, RemoteNamespaceStatus},
    labels::{
        TRUE, core,
        offloading::{MANAGED_BY_NAMESPACE_MAP, NAMESPACE_MAP_FINALIZER, ORIGINAL_NAME},
        replication,
    },
    runtime::KeyedBackoff,
};
use tracing::{info, warn};

use super::pod_policy::Level;
use crate::{Error, Result};

/// ClusterRole bound, in each twin namespace, to the consumer's identity group.
pub const REMOTE_NAMESPACE_CLUSTER_ROLE: &str = "liqo-virtual-kubelet-remote";

/// The ClusterRole [`REMOTE_NAMESPACE_CLUSTER_ROLE`] (upstream's Appendix B rules, plus pods
/// read access for the pod reflector): what a consumer's virtual kubelet may do in the twin
/// namespaces the NamespaceMap controller binds it to. Every provider keeps it in place (see
/// [`ensure_remote_cluster_role`]).
///
/// ```
/// let role = liqo_reflect::offloading::namespace_map::remote_cluster_role();
/// assert_eq!(role.metadata.name.as_deref(), Some("liqo-virtual-kubelet-remote"));
/// ```
#[must_use]
pub fn remote_cluster_role() -> k8s_openapi::api::rbac::v1::ClusterRole {
    use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    };
    // Upstream's verbs: no deletecollection.
    const CRUD: &[&str] = &[
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    ClusterRole {
        metadata: kube::api::ObjectMeta {
            name: Some(REMOTE_NAMESPACE_CLUSTER_ROLE.to_owned()),
            ..kube::api::ObjectMeta::default()
        },
        rules: Some(vec![
            rule(
                &[""],
                &[
                    "configmaps",
                    "events",
                    "persistentvolumeclaims",
                    "secrets",
                    "services",
                ],
                CRUD,
            ),
            rule(&[""], &["pods"], &["get", "list", "watch"]),
            rule(
                &[""],
                &["pods/attach", "pods/exec", "pods/portforward"],
                &["create", "get"],
            ),
            rule(&[""], &["pods/log"], &["get", "list"]),
            rule(&["metrics.k8s.io"], &["pods"], &["get", "list", "watch"]),
            rule(&["networking.k8s.io"], &["ingresses"], CRUD),
            rule(
                &["offloading.liqo.io"],
                // Not shadowpods/status: the phase is the provider's report.
                &["shadowendpointslices", "shadowpods"],
                CRUD,
            ),
        ]),
        ..ClusterRole::default()
    }
}

/// Applies [`remote_cluster_role`] (server-side apply: idempotent).
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses it.
pub async fn ensure_remote_cluster_role(client: &Client) -> Result<()> {
    kube::Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client.clone())
        .patch(
            REMOTE_NAMESPACE_CLUSTER_ROLE,
            &kube::api::PatchParams::apply("liqo-controller-manager").force(),
            &kube::api::Patch::Apply(&remote_cluster_role()),
        )
        .await
        .map_err(Error::kube(format!(
            "applying ClusterRole {REMOTE_NAMESPACE_CLUSTER_ROLE}"
        )))?;
    Ok(())
}

/// Settings of the NamespaceMap controller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Label selector of the NamespaceMaps to act on (default `liqo.io/replicated=true`: the
    /// replicas received from consumers).
    pub selector: String,
    /// The Pod Security level twin namespaces enforce (labels
    /// `pod-security.kubernetes.io/{enforce,warn,audit}`; default baseline).
    pub pod_security: Level,
    /// Levels per ResourceSlice class: a tenant whose accepted slices are all of classes
    /// listed here gets the strictest of their levels instead of [`Config::pod_security`]
    /// (e.g. a `trusted` class at `privileged`).
    pub pod_security_by_class: BTreeMap<String, Level>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            selector: format!("{}={TRUE}", replication::REPLICATED),
            pod_security: Level::Baseline,
            pod_security_by_class: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The default settings with twin namespaces enforcing `level`, or the level of the
    /// tenant's ResourceSlice class in `by_class`.
    #[must_use]
    pub fn with_pod_security(level: Level, by_class: BTreeMap<String, Level>) -> Self {
        Self {
            pod_security: level,
            pod_security_by_class: by_class,
            ..Self::default()
        }
    }
}

/// The Pod Security level of the twin namespaces of a tenant whose ResourceSlices are of
/// `classes`: the strictest level of its classes (a class not in `by_class`, or no slice at
/// all, counts as `default`).
///
/// ```
/// use std::collections::BTreeMap;
/// use liqo_reflect::offloading::namespace_map::level_for_classes;
/// use liqo_reflect::offloading::pod_policy::Level;
///
/// let by_class = BTreeMap::from([("trusted".to_owned(), Level::Privileged)]);
/// assert_eq!(level_for_classes(Level::Baseline, &by_class, &["trusted"]), Level::Privileged);
/// assert_eq!(level_for_classes(Level::Baseline, &by_class, &["trusted", "default"]), Level::Baseline);
/// assert_eq!(level_for_classes(Level::Baseline, &by_class, &[]), Level::Baseline);
/// ```
#[must_use]
pub fn level_for_classes(
    default: Level,
    by_class: &BTreeMap<String, Level>,
    classes: &[&str],
) -> Level {
    let strictness = |l: Level| match l {
        Level::Privileged => 0,
        Level::Baseline => 1,
        Level::Restricted => 2,
    };
    if classes.is_empty() {
        return default;
    }
    classes
        .iter()
        .map(|c| by_class.get(*c).copied().unwrap_or(default))
        .max_by_key(|l| strictness(*l))
        .unwrap_or(default)
}

/// Why a consumer may not have a twin namespace called `name`, if it may not: names that are
/// not namespace names, and names reserved to the provider (`default`, `kube-*`, `liqo`,
/// `liqo-storage`, and every tenant namespace `liqo-tenant-<id>`, present or future).
///
/// ```
/// use liqo_reflect::offloading::namespace_map::refused_name;
///
/// assert!(refused_name("demo-rome").is_none());
/// assert!(refused_name("liqo-demo").is_none());
/// assert!(refused_name("liqo-tenant-naples").is_some());
/// assert!(refused_name("kube-system").is_some());
/// assert!(refused_name(&"a".repeat(64)).is_some());
/// ```
#[must_use]
pub fn refused_name(name: &str) -> Option<String> {
    if let Err(e) = liqo_core::ids::validate_namespace_name(name) {
        return Some(e.to_string());
    }
    let reserved = name == "default"
        || name == core::LIQO
        || name == "liqo-storage"
        || name.starts_with("kube-")
        || name.starts_with("liqo-tenant-");
    reserved.then(|| {
        format!(
            "namespace name {name} is reserved on the provider (default, kube-*, liqo, \
             liqo-storage, liqo-tenant-*): choose another remote name"
        )
    })
}

/// The cluster that owns the tenant namespace `namespace` (label `liqo.io/remote-cluster-id`,
/// else the id in a `liqo-tenant-<id>` name): the only cluster a NamespaceMap in it may create
/// twin namespaces for, whatever labels the replica carries.
#[must_use]
pub fn tenant_of(namespace: &Namespace) -> Option<String> {
    namespace
        .labels()
        .get(core::REMOTE_CLUSTER_ID)
        .cloned()
        .or_else(|| {
            liqo_core::ids::ClusterId::from_tenant_namespace(&namespace.name_any())
                .map(|id| id.to_string())
        })
}

/// The id written in the `liqo.io/managed-by-namespace-map` annotation: `<namespace>/<name>`.
pub fn map_id(map: &NamespaceMap) -> String {
    format!("{}/{}", map.namespace().unwrap_or_default(), map.name_any())
}

/// The cluster a NamespaceMap comes from (`liqo.io/originID`, else
/// `liqo.io/remote-cluster-id`).
pub fn origin(map: &NamespaceMap) -> Option<String> {
    let labels = map.labels();
    labels
        .get(replication::ORIGIN_ID)
        .or_else(|| labels.get(core::REMOTE_CLUSTER_ID))
        .cloned()
}

/// The Pod Security labels of a twin namespace enforcing `level`.
#[must_use]
pub fn pod_security_labels(level: Level) -> BTreeMap<String, String> {
    use liqo_core::labels::kubernetes as k8s;
    [
        k8s::POD_SECURITY_ENFORCE,
        k8s::POD_SECURITY_WARN,
        k8s::POD_SECURITY_AUDIT,
    ]
    .into_iter()
    .map(|k| (k.to_owned(), level.as_str().to_owned()))
    .collect()
}

/// The twin namespace for `original` in a map with id `id` from cluster `origin`, enforcing
/// the Pod Security `level`.
pub fn forge_namespace(
    name: &str,
    original: &str,
    id: &str,
    origin: &str,
    level: Level,
) -> Namespace {
    let mut labels = pod_security_labels(level);
    labels.insert(core::REMOTE_CLUSTER_ID.to_owned(), origin.to_owned());
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(
                [
                    (MANAGED_BY_NAMESPACE_MAP.to_owned(), id.to_owned()),
                    (ORIGINAL_NAME.to_owned(), original.to_owned()),
                ]
                .into(),
            ),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Whether `namespace` is managed by the map with id `id`.
pub fn is_managed_by(namespace: &Namespace, id: &str) -> bool {
    namespace
        .annotations()
        .get(MANAGED_BY_NAMESPACE_MAP)
        .is_some_and(|v| v == id)
}

struct Context {
    client: Client,
    backoff: KeyedBackoff<ObjectRef<NamespaceMap>>,
    pod_security: Level,
    pod_security_by_class: BTreeMap<String, Level>,
}

/// The level of the twin namespaces of the tenant of `namespace` (per the classes of its
/// replicated ResourceSlices there).
async fn tenant_level(ctx: &Context, namespace: &str) -> Result<Level> {
    if ctx.pod_security_by_class.is_empty() {
        return Ok(ctx.pod_security);
    }
    let slices = Api::<liqo_core::api::authentication::v1beta1::ResourceSlice>::namespaced(
        ctx.client.clone(),
        namespace,
    )
    .list(&kube::api::ListParams::default().labels(&format!("{}={TRUE}", replication::REPLICATED)))
    .await
    .map_err(Error::kube(format!(
        "listing the ResourceSlices in {namespace}"
    )))?;
    let classes: Vec<&str> = slices
        .items
        .iter()
        .map(|s| s.spec.class.as_deref().unwrap_or("default"))
        .collect();
    Ok(level_for_classes(
        ctx.pod_security,
        &ctx.pod_security_by_class,
        &classes,
    ))
}

/// Creates the namespace and its RoleBinding; `Ok(false)` when the name is taken.
async fn ensure_namespace(
    ctx: &Context,
    map: &NamespaceMap,
    origin: &str,
    level: Level,
    original: &str,
    name: &str,
) -> Result<bool> {
    let id = map_id(map);
    let origin = origin.to_owned();
    if let Some(why) = refused_name(name) {
        warn!(namespace = %name, map = %id, "{why}");
        return Ok(false);
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let existing = namespaces
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("reading namespace {name}")))?;
    let namespace = match existing {
        Some(ns) => ns,
        None => match namespaces
            .create(
                &PostParams::default(),
                &forge_namespace(name, original, &id, &origin, level),
            )
            .await
        {
            Ok(ns) => {
                info!(namespace = %name, %origin, "twin namespace created");
                ns
            }
            Err(kube::Error::Api(e)) if e.code == 409 => namespaces
                .get(name)
                .await
                .map_err(Error::kube(format!("reading namespace {name}")))?,
            Err(e) => return Err(Error::kube(format!("creating namespace {name}"))(e)),
        },
    };
    if !is_managed_by(&namespace, &id) {
        warn!(namespace = %name, map = %id, "namespace exists and is not managed by the NamespaceMap");
        return Ok(false);
    }
    if namespace.metadata.deletion_timestamp.is_some() {
        // Re-created once the deletion completes.
        return Ok(false);
    }
    // Twin namespaces created before the provider enforced Pod Security, or with another
    // level, are brought to the configured one.
    let wanted = pod_security_labels(level);
    if wanted
        .iter()
        .any(|(k, v)| namespace.labels().get(k) != Some(v))
    {
        namespaces
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": wanted}})),
            )
            .await
            .map_err(Error::kube(format!(
                "setting the Pod Security labels of namespace {name}"
            )))?;
    }
    let binding_name = map.namespace().unwrap_or_default();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(binding_name.clone()),
            namespace: Some(name.to_owned()),
            annotations: Some([(MANAGED_BY_NAMESPACE_MAP.to_owned(), id.clone())].into()),
            labels: Some(
                [
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        core::LIQO.to_owned(),
                    ),
                    (core::REMOTE_CLUSTER_ID.to_owned(), origin.clone()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: REMOTE_NAMESPACE_CLUSTER_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: origin,
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(ctx.client.clone(), name)
        .patch(
            &binding_name,
            &PatchParams::apply("namespacemap-controller.liqo.io").force(),
            &Patch::Apply(&binding),
        )
        .await
        .map_err(Error::kube(format!(
            "applying RoleBinding {name}/{binding_name}"
        )))?;
    Ok(true)
}

/// Deletes the namespace if managed by the map; `Ok(true)` while it still exists.
async fn delete_namespace(ctx: &Context, id: &str, name: &str) -> Result<bool> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let Some(namespace) = namespaces
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("reading namespace {name}")))?
    else {
        return Ok(false);
    };
    if !is_managed_by(&namespace, id) {
        return Ok(false);
    }
    if namespace.metadata.deletion_timestamp.is_none() {
        match namespaces.delete(name, &DeleteParams::default()).await {
            Ok(_) => info!(namespace = %name, "twin namespace deleted"),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
            Err(e) => return Err(Error::kube(format!("deleting namespace {name}"))(e)),
        }
    }
    Ok(true)
}

async fn set_finalizer(api: &Api<NamespaceMap>, map: &NamespaceMap, present: bool) -> Result<()> {
    let mut finalizers = map.finalizers().to_vec();
    if finalizers.iter().any(|f| f == NAMESPACE_MAP_FINALIZER) == present {
        return Ok(());
    }
    if present {
        finalizers.push(NAMESPACE_MAP_FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != NAMESPACE_MAP_FINALIZER);
    }
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": map.resource_version(),
    }});
    api.patch(
        &map.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube(format!(
        "updating the finalizers of NamespaceMap {}",
        map_id(map)
    )))?;
    Ok(())
}

async fn reconcile(map: Arc<NamespaceMap>, ctx: Arc<Context>) -> Result<Action> {
    let api: Api<NamespaceMap> =
        Api::namespaced(ctx.client.clone(), &map.namespace().unwrap_or_default());
    let id = map_id(&map);
    let deleting = map.metadata.deletion_timestamp.is_some();
    if !deleting {
        set_finalizer(&api, &map, true).await?;
    }
    let previous = map
        .status
        .as_ref()
        .map(|s| s.current_mapping.clone())
        .unwrap_or_default();
    let mut current: BTreeMap<String, RemoteNamespaceStatus> = BTreeMap::new();
    let mut first_error = None;
    // The tenant is the owner of the namespace the map lives in, never what the replica's
    // labels (written by the consumer) claim.
    let tenant = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&map.namespace().unwrap_or_default())
        .await
        .map_err(Error::kube(format!(
            "reading the namespace of NamespaceMap {id}"
        )))?
        .as_ref()
        .and_then(tenant_of);
    if let Some(claimed) = origin(&map)
        && tenant.as_deref() != Some(claimed.as_str())
    {
        warn!(map = %id, %claimed, tenant = ?tenant, "NamespaceMap claims another origin: ignored");
    }
    let Some(tenant) = tenant.as_deref() else {
        warn!(map = %id, "the namespace of the NamespaceMap belongs to no tenant (no liqo.io/remote-cluster-id label): ignored");
        return Ok(Action::requeue(Duration::from_secs(300)));
    };
    if !deleting {
        let level = tenant_level(&ctx, &map.namespace().unwrap_or_default()).await?;
        for (original, remote) in &map.spec.desired_mapping {
            let phase = match ensure_namespace(&ctx, &map, tenant, level, original, remote).await {
                Ok(true) => MappingPhase::Accepted,
                Ok(false) => MappingPhase::CreationLoopBackOff,
                Err(e) => {
                    // Keep an accepted mapping through transient errors.
                    let kept = previous
                        .get(original)
                        .and_then(|p| p.phase)
                        .filter(|p| *p == MappingPhase::Accepted)
                        .unwrap_or(MappingPhase::CreationLoopBackOff);
                    first_error.get_or_insert(e);
                    kept
                }
            };
            current.insert(
                original.clone(),
                RemoteNamespaceStatus {
                    remote_namespace: Some(remote.clone()),
                    phase: Some(phase),
                },
            );
        }
    }
    for (original, status) in &previous {
        if current.contains_key(original) {
            continue;
        }
        let Some(remote) = status.remote_namespace.as_deref() else {
            continue;
        };
        match delete_namespace(&ctx, &id, remote).await {
            Ok(true) => {
                current.insert(
                    original.clone(),
                    RemoteNamespaceStatus {
                        remote_namespace: Some(remote.to_owned()),
                        phase: Some(MappingPhase::Terminating),
                    },
                );
            }
            Ok(false) => {}
            Err(e) => {
                current.insert(original.clone(), status.clone());
                first_error.get_or_insert(e);
            }
        }
    }
    if current != previous {
        let mut mapping =
            serde_json::to_value(&current).map_err(|source| Error::Serialization {
                what: "a NamespaceMap status".to_owned(),
                source,
            })?;
        for key in previous.keys() {
            if !current.contains_key(key) {
                mapping[key] = serde_json::Value::Null;
            }
        }
        api.patch_status(
            &map.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"currentMapping": mapping}})),
        )
        .await
        .map_err(Error::kube(format!(
            "writing the status of NamespaceMap {id}"
        )))?;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let waiting = current.values().any(|s| {
        matches!(
            s.phase,
            Some(MappingPhase::Terminating | MappingPhase::CreationLoopBackOff)
        )
    });
    if deleting && current.is_empty() {
        set_finalizer(&api, &map, false).await?;
        return Ok(Action::await_change());
    }
    ctx.backoff.reset_object(&map);
    Ok(if waiting {
        Action::requeue(Duration::from_secs(2))
    } else {
        Action::requeue(Duration::from_secs(300))
    })
}

fn error_policy(map: Arc<NamespaceMap>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(map = %map_id(&map), %error, "NamespaceMap reconcile failed");
    ctx.backoff.requeue_object(&map)
}

/// Runs the NamespaceMap controller until `shutdown` resolves.
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_reflect::offloading::namespace_map;
///
/// namespace_map::run(client, namespace_map::Config::default(), liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let ctx = Arc::new(Context {
        client: client.clone(),
        backoff: KeyedBackoff::default(),
        pod_security: config.pod_security,
        pod_security_by_class: config.pod_security_by_class,
    });
    info!("NamespaceMap controller running");
    Controller::new(
        Api::<NamespaceMap>::all(client),
        watcher::Config::default().labels(&config.selector),
    )
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| std::future::ready(()))
    .await;
    info!("NamespaceMap controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_core::api::offloading::v1beta1::NamespaceMapSpec;

    #[test]
    fn twin_namespace_metadata() {
        let mut map = NamespaceMap::new("milan", NamespaceMapSpec::default());
        map.metadata.namespace = Some("liqo-tenant-rome".into());
        map.metadata.labels = Some([("liqo.io/originID".to_owned(), "rome".to_owned())].into());
        assert_eq!(map_id(&map), "liqo-tenant-rome/milan");
        assert_eq!(origin(&map).as_deref(), Some("rome"));
        let ns = forge_namespace("demo-rome", "demo", &map_id(&map), "rome", Level::Baseline);
        assert_eq!(
            ns.labels()["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(
            ns.annotations()["liqo.io/managed-by-namespace-map"],
            "liqo-tenant-rome/milan"
        );
        assert_eq!(ns.annotations()["liqo.io/original-name"], "demo");
        assert_eq!(ns.labels()["liqo.io/remote-cluster-id"], "rome");
        assert!(is_managed_by(&ns, "liqo-tenant-rome/milan"));
        assert!(!is_managed_by(&ns, "liqo-tenant-naples/milan"));
    }
}
