//! Admission rules of the provider that the API server itself enforces, as
//! `ValidatingAdmissionPolicies` (CEL, no webhook to run or reach): a Tenant is bound to its
//! tenant namespace and to the peering user of that namespace, and a peering user cannot undo
//! what the provider decided about its tenant.
//!
//! The rules ([`tenant_policy`]):
//!
//! - a Tenant is named after its `spec.clusterID`, which never changes;
//! - its namespace belongs to that cluster (label `liqo.io/remote-cluster-id` equal to
//!   `spec.clusterID`), so one tenant namespace holds one Tenant and a consumer can only speak
//!   for itself: the peering user issued for consumer B, which may write only in B's tenant
//!   namespace, cannot create a Tenant for consumer A;
//! - a peering user (`liqo-peer-user-<consumer>-<random>`) may only write the Tenant of its
//!   own consumer, may not change `spec.tenantCondition` (cordon and drain are the provider's),
//!   and may not delete a cordoned or drained Tenant (which would start it afresh as Active).
//!
//! The Tenant controller checks the binding again before it issues anything
//! ([`tenant_binding`]), so a cluster whose API server lacks the policies still refuses.
//!
//! ```
//! use liqo_auth::policy::{TENANT_POLICY, tenant_policy};
//!
//! let policy = tenant_policy();
//! assert_eq!(policy["metadata"]["name"], TENANT_POLICY);
//! assert!(policy["spec"]["validations"].as_array().is_some_and(|v| v.len() >= 4));
//! ```

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use liqo_core::api::authentication::v1beta1::Tenant;
use liqo_core::ids::ClusterId;
use liqo_core::labels::core as core_keys;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::names;

/// Name of the ValidatingAdmissionPolicy (and of its binding) on Tenants.
pub const TENANT_POLICY: &str = "liqo-tenant-binding";
const FIELD_MANAGER: &str = "liqo-authentication";

/// The ValidatingAdmissionPolicy on Tenants (see the module documentation).
#[must_use]
pub fn tenant_policy() -> Value {
    let label = core_keys::REMOTE_CLUSTER_ID;
    let prefix = names::PEERING_USER_PREFIX;
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": TENANT_POLICY, "labels": {"app.kubernetes.io/managed-by": "liqo"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["authentication.liqo.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["tenants"],
            }]},
            "variables": [
                {"name": "peeringUser",
                 "expression": format!("request.userInfo.username.startsWith('{prefix}')")},
                {"name": "writing", "expression": "request.operation != 'DELETE'"},
                {"name": "clusterID",
                 "expression": "request.operation == 'DELETE' ? '' : object.spec.?clusterID.orValue('')"},
                {"name": "condition",
                 "expression": "request.operation == 'DELETE' ? '' : object.spec.?tenantCondition.orValue('Active')"},
                {"name": "oldCondition",
                 "expression": "request.operation == 'CREATE' ? 'Active' : oldObject.spec.?tenantCondition.orValue('Active')"},
            ],
            "validations": [
                {
                    "expression": "!variables.writing || (variables.clusterID != '' && object.metadata.name == variables.clusterID)",
                    "message": "a Tenant must be named after its spec.clusterID (the consumer's cluster id)",
                    "reason": "Invalid",
                },
                {
                    "expression": format!("!variables.writing || namespaceObject.metadata.?labels[?'{label}'].orValue('') == variables.clusterID"),
                    "messageExpression": format!("'spec.clusterID ' + variables.clusterID + ' is not the cluster of namespace ' + namespaceObject.metadata.name + ' (label {label}=' + namespaceObject.metadata.?labels[?'{label}'].orValue('<none>') + '): a Tenant lives in the tenant namespace of its own cluster'"),
                    "reason": "Forbidden",
                },
                {
                    "expression": "request.operation != 'UPDATE' || oldObject.spec.?clusterID.orValue('') == variables.clusterID",
                    "message": "spec.clusterID of a Tenant is immutable",
                    "reason": "Invalid",
                },
                {
                    "expression": format!("!variables.peeringUser || !variables.writing || request.userInfo.username.startsWith('{prefix}' + variables.clusterID + '-')"),
                    "messageExpression": "'peering user ' + request.userInfo.username + ' may not write the Tenant of cluster ' + variables.clusterID",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!variables.peeringUser || !variables.writing || variables.condition == variables.oldCondition",
                    "message": "spec.tenantCondition (cordon, drain) is decided by the provider's administrator, not by a peering user",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!variables.peeringUser || variables.writing || variables.oldCondition == 'Active'",
                    "message": "a cordoned or drained Tenant can only be removed by the provider's administrator",
                    "reason": "Forbidden",
                },
            ],
        },
    })
}

/// The binding that enforces [`tenant_policy`] everywhere (action `Deny`).
#[must_use]
pub fn tenant_policy_binding() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": TENANT_POLICY, "labels": {"app.kubernetes.io/managed-by": "liqo"}},
        "spec": {"policyName": TENANT_POLICY, "validationActions": ["Deny"]},
    })
}

fn api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// Applies the policies and their bindings (server-side apply: idempotent).
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses them (for example a Kubernetes older than
/// 1.30, without `admissionregistration.k8s.io/v1` policies).
pub async fn ensure(client: &Client) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api(
        client,
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
    )
    .patch(TENANT_POLICY, &params, &Patch::Apply(&tenant_policy()))
    .await
    .map_err(Error::kube(format!(
        "applying ValidatingAdmissionPolicy {TENANT_POLICY}"
    )))?;
    api(
        client,
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
    )
    .patch(
        TENANT_POLICY,
        &params,
        &Patch::Apply(&tenant_policy_binding()),
    )
    .await
    .map_err(Error::kube(format!(
        "applying ValidatingAdmissionPolicyBinding {TENANT_POLICY}"
    )))?;
    Ok(())
}

/// The consumer a Tenant speaks for, if it is bound as [`tenant_policy`] requires: named after
/// a valid `spec.clusterID` that is the cluster of its namespace (`namespace_cluster`, the
/// namespace's `liqo.io/remote-cluster-id` label).
///
/// ```
/// use liqo_auth::policy::tenant_binding;
/// use liqo_core::api::authentication::v1beta1::{Tenant, TenantSpec};
///
/// let mut t = Tenant::new("rome", TenantSpec { cluster_id: Some("rome".into()), ..Default::default() });
/// assert_eq!(tenant_binding(&t, Some("rome")).unwrap().as_str(), "rome");
/// // The attack: a Tenant for rome in naples' tenant namespace.
/// assert!(tenant_binding(&t, Some("naples")).is_err());
/// t.spec.cluster_id = Some("naples".into());
/// assert!(tenant_binding(&t, Some("naples")).is_err(), "named rome");
/// ```
///
/// # Errors
///
/// A message saying which binding is broken.
pub fn tenant_binding(
    tenant: &Tenant,
    namespace_cluster: Option<&str>,
) -> std::result::Result<ClusterId, String> {
    let claimed = tenant
        .spec
        .cluster_id
        .as_deref()
        .ok_or_else(|| "spec.clusterID is missing".to_owned())?;
    let id = ClusterId::new(claimed).map_err(|e| e.to_string())?;
    let name = tenant.metadata.name.as_deref().unwrap_or_default();
    if name != claimed {
        return Err(format!(
            "the Tenant is named {name} but claims cluster {claimed}: a Tenant is named after \
             its spec.clusterID"
        ));
    }
    match namespace_cluster {
        Some(owner) if owner == claimed => Ok(id),
        Some(owner) => Err(format!(
            "the Tenant claims cluster {claimed} but its namespace belongs to cluster {owner}"
        )),
        None => Err(format!(
            "the Tenant's namespace has no {} label: it is not a tenant namespace",
            core_keys::REMOTE_CLUSTER_ID
        )),
    }
}
