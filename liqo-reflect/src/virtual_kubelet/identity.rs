//! The virtual kubelet's own identity on the home cluster: a ServiceAccount per VirtualNode
//! (`virtual-kubelet-<name>` in its tenant namespace), bound to the ClusterRole
//! [`LOCAL_CLUSTER_ROLE`] (what a virtual kubelet does on its home cluster, upstream's
//! `liqo-virtual-kubelet-local`), and short-lived tokens for it from the TokenRequest API. The
//! VirtualNode controller gives each kubelet such a token instead of its own credentials.
//!
//! ```
//! use liqo_reflect::virtual_kubelet::identity::{LOCAL_CLUSTER_ROLE, local_cluster_role};
//!
//! let role = local_cluster_role();
//! assert_eq!(role.metadata.name.as_deref(), Some(LOCAL_CLUSTER_ROLE));
//! // It may not create pods, nor write Secrets.
//! let rules = role.rules.unwrap_or_default();
//! assert!(!rules.iter().any(|r| r.resources.iter().flatten().any(|x| x == "pods")
//!     && r.verbs.iter().any(|v| v == "create")));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::{Error, Result};

/// The ClusterRole of virtual kubelets on their home cluster.
pub const LOCAL_CLUSTER_ROLE: &str = "liqo-virtual-kubelet-local";
const FIELD_MANAGER: &str = "liqo-virtualnode-controller";
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "liqo");
/// Label with the VirtualNode (`<namespace>.<name>`) an identity belongs to.
const VIRTUAL_NODE_LABEL: &str = "offloading.liqo.io/virtual-node";

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// [`LOCAL_CLUSTER_ROLE`]: its Node and Lease, the status of the pods it runs (never creating
/// pods), reading what it reflects, writing reflected Events, PersistentVolumes and the status
/// of Services and Ingresses, ServiceAccount tokens of offloaded pods, and SubjectAccessReviews
/// to authorize its kubelet API.
#[must_use]
pub fn local_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(LOCAL_CLUSTER_ROLE.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule(&[""], &["nodes", "nodes/status"], WRITE),
            rule(&["coordination.k8s.io"], &["leases"], WRITE),
            rule(
                &[""],
                &["pods"],
                &["get", "list", "watch", "update", "patch", "delete"],
            ),
            rule(&[""], &["pods/status"], &["get", "update", "patch"]),
            rule(&[""], &["pods/eviction"], &["create"]),
            rule(
                &[""],
                &[
                    "configmaps",
                    "secrets",
                    "services",
                    "endpoints",
                    "namespaces",
                    "serviceaccounts",
                ],
                READ,
            ),
            rule(&[""], &["services/status"], &["get", "update", "patch"]),
            rule(&[""], &["serviceaccounts/token"], &["create"]),
            rule(&[""], &["events"], WRITE),
            rule(&["events.k8s.io"], &["events"], WRITE),
            rule(
                &[""],
                &["persistentvolumeclaims", "persistentvolumes"],
                WRITE,
            ),
            rule(
                &[""],
                &["persistentvolumeclaims/status", "persistentvolumes/status"],
                &["get", "update", "patch"],
            ),
            rule(&["discovery.k8s.io"], &["endpointslices"], READ),
            rule(&["networking.k8s.io"], &["ingresses"], READ),
            rule(
                &["networking.k8s.io"],
                &["ingresses/status"],
                &["get", "update", "patch"],
            ),
            rule(&["storage.k8s.io"], &["storageclasses"], READ),
            rule(
                &["authorization.k8s.io"],
                &["subjectaccessreviews"],
                &["create"],
            ),
            rule(
                &["offloading.liqo.io"],
                &["namespacemaps", "virtualnodes", "namespaceoffloadings"],
                READ,
            ),
            rule(&["core.liqo.io"], &["foreignclusters"], READ),
            rule(&["authentication.liqo.io"], &["resourceslices"], READ),
            rule(
                &["networking.liqo.io"],
                &["configurations", "connections"],
                READ,
            ),
            rule(&["ipam.liqo.io"], &["ips", "networks"], READ),
        ]),
        ..ClusterRole::default()
    }
}

/// The ServiceAccount of the virtual kubelet of VirtualNode `name`.
#[must_use]
pub fn service_account_name(name: &str) -> String {
    format!("virtual-kubelet-{name}")
}

fn binding_name(namespace: &str, name: &str) -> String {
    format!("{LOCAL_CLUSTER_ROLE}-{namespace}-{name}")
}

/// Applies [`local_cluster_role`] (server-side apply: idempotent).
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses it.
pub async fn ensure_cluster_role(client: &Client) -> Result<()> {
    Api::<ClusterRole>::all(client.clone())
        .patch(
            LOCAL_CLUSTER_ROLE,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&local_cluster_role()),
        )
        .await
        .map_err(Error::kube(format!(
            "applying ClusterRole {LOCAL_CLUSTER_ROLE}"
        )))?;
    Ok(())
}

/// Ensures the ServiceAccount of VirtualNode `namespace/name` and its ClusterRoleBinding.
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses them.
pub async fn ensure(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let sa_name = service_account_name(name);
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (VIRTUAL_NODE_LABEL.to_owned(), format!("{namespace}.{name}")),
    ]);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(sa_name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .patch(&sa_name, &params, &Patch::Apply(&sa))
        .await
        .map_err(Error::kube(format!(
            "applying ServiceAccount {namespace}/{sa_name}"
        )))?;
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(binding_name(namespace, name)),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: LOCAL_CLUSTER_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: sa_name,
            namespace: Some(namespace.to_owned()),
            api_group: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(
            &binding_name(namespace, name),
            &params,
            &Patch::Apply(&binding),
        )
        .await
        .map_err(Error::kube(format!(
            "applying ClusterRoleBinding {}",
            binding_name(namespace, name)
        )))?;
    Ok(())
}

/// A fresh token of the ServiceAccount of VirtualNode `namespace/name`, valid for `lifetime`.
///
/// # Errors
///
/// [`Error::Kube`] when the TokenRequest is refused, [`Error::InvalidConfig`] when the answer
/// has no token.
pub async fn token(
    client: &Client,
    namespace: &str,
    name: &str,
    lifetime: Duration,
) -> Result<String> {
    let sa_name = service_account_name(name);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: i64::try_from(lifetime.as_secs()).ok(),
            bound_object_ref: None,
        }),
        ..TokenRequest::default()
    };
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(&sa_name, &PostParams::default(), &request)
        .await
        .map_err(Error::kube(format!(
            "requesting a token for ServiceAccount {namespace}/{sa_name}"
        )))?;
    answer
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "the TokenRequest for {namespace}/{sa_name} returned no token"
            ))
        })
}

/// Deletes the ServiceAccount and ClusterRoleBinding of VirtualNode `namespace/name`.
///
/// # Errors
///
/// [`Error::Kube`] for failures other than "not found".
pub async fn remove(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let gone = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    if let Err(e) = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&binding_name(namespace, name), &DeleteParams::default())
        .await
        && !gone(&e)
    {
        return Err(Error::kube(
            "deleting the virtual kubelet's ClusterRoleBinding",
        )(e));
    }
    if let Err(e) = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .delete(&service_account_name(name), &DeleteParams::default())
        .await
        && !gone(&e)
    {
        return Err(Error::kube("deleting the virtual kubelet's ServiceAccount")(e));
    }
    Ok(())
}
