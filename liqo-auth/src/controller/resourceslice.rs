//! ResourceSlice, both sides.
//!
//! Consumer (the original, labelled `liqo.io/replication=true`): completes the spec (consumer
//! id, CSR), and once the provider answered (status replicated back) creates Identity
//! `resourceslice-<slice>` and, when resources were accepted, VirtualNode `<slice>`.
//!
//! Provider (the replica, labelled `liqo.io/replicated=true`): authenticates the slice (CSR
//! signed through the CSR API), grants or denies resources (conditions `Authentication` and
//! `Resources`), publishes the cluster labels (`status.nodeLabels`, which become the labels of
//! the consumer's virtual node) and creates `Quota <CN>` for accepted slices.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{
    AuthParams, Identity, IdentityType, ResourceSlice, ResourceSliceCondition,
    ResourceSliceConditionStatus as Status, ResourceSliceConditionType as Type, Tenant,
    TenantCondition,
};
use liqo_core::api::offloading::v1beta1::{Quota, VirtualNode};
use liqo_core::ids::ClusterId;
use liqo_core::labels::{self, authentication as auth_keys};

use super::{Context, ShutdownFuture, apply_params, drain, is_404};
use crate::error::{Error, Result};
use crate::negotiator::SliceCapacity;
use crate::{cluster_labels, forge, grant, names, renewal};

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<ResourceSlice>::all(ctx.client.clone());
    let identities = Api::<Identity>::all(ctx.client.clone());
    let tenants = Api::<Tenant>::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    // A Tenant cordoned, drained or made active again: its slices' Quotas follow.
    let slices = controller.store();
    drain(
        controller
            .owns(identities, watcher::Config::default())
            .watches(
                tenants,
                watcher::Config::default(),
                move |tenant: Tenant| {
                    let ns = tenant.namespace();
                    slices
                        .state()
                        .into_iter()
                        .filter(|s| s.namespace() == ns && forge::is_replica(&s.metadata))
                        .map(|s| ObjectRef::from_obj(s.as_ref()))
                        .collect::<Vec<_>>()
                },
            )
            .graceful_shutdown_on(shutdown)
            .run(
                reconcile,
                |obj: Arc<ResourceSlice>, e: &Error, ctx: Arc<Context>| {
                    ctx.error_policy(obj.as_ref(), e)
                },
                ctx,
            ),
    )
    .await;
}

async fn reconcile(slice: Arc<ResourceSlice>, ctx: Arc<Context>) -> Result<Action> {
    if slice.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let action = if forge::is_replica(&slice.metadata) {
        provider(&slice, &ctx).await?
    } else {
        consumer(&slice, &ctx).await?
    };
    ctx.reset_backoff(slice.as_ref());
    Ok(action)
}

fn condition(slice: &ResourceSlice, type_: Type) -> Option<&ResourceSliceCondition> {
    slice
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Whether the slice's resources were accepted by the provider.
pub(super) fn resources_accepted(slice: &ResourceSlice) -> bool {
    condition(slice, Type::Resources).is_some_and(|c| c.status == Status::Accepted)
}

async fn consumer(slice: &ResourceSlice, ctx: &Context) -> Result<Action> {
    let ns = slice.namespace().unwrap_or_default();
    let name = slice.name_any();
    let api = Api::<ResourceSlice>::namespaced(ctx.client.clone(), &ns);
    let Some(provider) = slice
        .spec
        .provider_cluster_id
        .as_deref()
        .and_then(|p| ClusterId::new(p).ok())
        .or_else(|| ClusterId::from_tenant_namespace(&ns))
    else {
        return Ok(Action::await_change());
    };
    if slice.spec.csr.is_none() || slice.spec.consumer_cluster_id.is_none() {
        let completed = ctx.negotiator.request_slice(slice.clone()).await?;
        let patch = serde_json::json!({"spec": {
            "consumerClusterID": completed.spec.consumer_cluster_id,
            "csr": completed.spec.csr,
        }});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!("completing ResourceSlice {ns}/{name}")))?;
        return Ok(Action::await_change());
    }
    let Some(params) = slice.status.as_ref().and_then(|s| s.auth_params.clone()) else {
        return Ok(Action::await_change());
    };
    // Identity resourceslice-<slice>, owned by the slice (the identity controller makes its
    // kubeconfig Secret).
    let remote_ns = ctx.config.cluster_id.tenant_namespace();
    let identity_name = names::resource_slice_identity(&name);
    let mut identity = forge::identity(
        &identity_name,
        IdentityType::ResourceSlice,
        &provider,
        params,
        &remote_ns,
    );
    identity.metadata.owner_references = forge::owner_reference(slice).map(|o| vec![o]);
    Api::<Identity>::namespaced(ctx.client.clone(), &ns)
        .patch(&identity_name, &apply_params(), &Patch::Apply(&identity))
        .await
        .map_err(Error::kube(format!(
            "applying Identity {ns}/{identity_name}"
        )))?;

    let wants_node = slice
        .annotations()
        .get(auth_keys::CREATE_VIRTUAL_NODE)
        .is_none_or(|v| v == labels::TRUE);
    let vns = Api::<VirtualNode>::namespaced(ctx.client.clone(), &ns);
    if ctx.config.create_virtual_nodes && wants_node && resources_accepted(slice) {
        let granted = slice
            .status
            .as_ref()
            .map(|s| s.resources.clone())
            .unwrap_or_default();
        let vn = forge::virtual_node(
            slice,
            &provider,
            &names::kubeconfig_secret(&identity_name),
            granted,
        );
        vns.patch(&name, &apply_params(), &Patch::Apply(&vn))
            .await
            .map_err(Error::kube(format!("applying VirtualNode {ns}/{name}")))?;
    } else if condition(slice, Type::Resources).is_some_and(|c| c.status == Status::Denied) {
        match vns.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_404(&e) => {}
            Err(e) => return Err(Error::kube(format!("deleting VirtualNode {ns}/{name}"))(e)),
        }
    }
    Ok(Action::requeue(ctx.config.resync))
}

/// Allocatable of physical nodes and grants of the other accepted slices.
async fn capacity(ctx: &Context, slice: &ResourceSlice) -> Result<SliceCapacity> {
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing nodes"))?;
    let physical: Vec<_> = nodes
        .items
        .iter()
        .filter(|n| !labels::is_virtual_node(n.labels()))
        .filter_map(|n| n.status.as_ref()?.allocatable.as_ref())
        .collect();
    let slices = Api::<ResourceSlice>::all(ctx.client.clone())
        .list(&ListParams::default().labels(&format!(
            "{}={}",
            labels::replication::REPLICATED,
            labels::TRUE
        )))
        .await
        .map_err(Error::kube("listing ResourceSlices"))?;
    let others: Vec<_> = slices
        .items
        .iter()
        .filter(|s| s.metadata.uid != slice.metadata.uid && resources_accepted(s))
        .filter_map(|s| s.status.as_ref().map(|st| &st.resources))
        .collect();
    Ok(SliceCapacity {
        allocatable: grant::sum(physical)?,
        granted_to_others: grant::sum(others)?,
    })
}

fn cond(type_: Type, status: Status, reason: &str, message: String) -> ResourceSliceCondition {
    ResourceSliceCondition {
        type_,
        status,
        last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
        reason: Some(reason.to_owned()),
        message: Some(message),
    }
}

/// Keeps the transition time of conditions whose status did not change.
fn merge_conditions(
    old: &[ResourceSliceCondition],
    new: Vec<ResourceSliceCondition>,
) -> Vec<ResourceSliceCondition> {
    new.into_iter()
        .map(|mut c| {
            if let Some(o) = old.iter().find(|o| o.type_ == c.type_)
                && o.status == c.status
                && o.message == c.message
            {
                c.last_transition_time = o.last_transition_time.clone();
            }
            c
        })
        .collect()
}

async fn provider(slice: &ResourceSlice, ctx: &Context) -> Result<Action> {
    let ns = slice.namespace().unwrap_or_default();
    let name = slice.name_any();
    let api = Api::<ResourceSlice>::namespaced(ctx.client.clone(), &ns);
    let status = slice.status.clone().unwrap_or_default();
    let consumer = slice
        .spec
        .consumer_cluster_id
        .as_deref()
        .and_then(|c| ClusterId::new(c).ok());

    // Not completed by the consumer yet (replicated before its controller added the consumer
    // id and the CSR): wait for the update.
    if consumer.is_none() || slice.spec.csr.as_ref().is_none_or(|c| c.0.is_empty()) {
        return Ok(Action::await_change());
    }

    // Already answered, certificate not due for renewal: only keep the Quota.
    let cert_due = status
        .auth_params
        .as_ref()
        .and_then(|p| p.signed_crt.as_ref())
        .and_then(|c| renewal::lifetime(&c.0).ok())
        .map(|l| renewal::decide(l, renewal::now()));
    let answered = condition(slice, Type::Authentication).is_some()
        && condition(slice, Type::Resources).is_some()
        && cert_due.is_some_and(|d| !d.renew_now);
    let spec_seen = slice
        .annotations()
        .get(GRANTED_GENERATION)
        .and_then(|g| g.parse::<i64>().ok())
        == slice.metadata.generation;
    if !(answered && spec_seen) {
        let tenant = match &consumer {
            Some(c) => Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
                .get_opt(c.as_str())
                .await
                .map_err(Error::kube(format!("reading Tenant {ns}/{c}")))?,
            None => None,
        };
        // The Tenant must be bound to this namespace (its owner's label), as the Tenant
        // controller required before it accepted it.
        let owner = Api::<Namespace>::all(ctx.client.clone())
            .get_opt(&ns)
            .await
            .map_err(Error::kube(format!("reading namespace {ns}")))?
            .and_then(|n| n.labels().get(labels::core::REMOTE_CLUSTER_ID).cloned());
        let tenant = tenant.filter(|t| {
            crate::policy::tenant_binding(t, owner.as_deref())
                .is_ok_and(|c| Some(&c) == consumer.as_ref())
        });
        let tenant_ok = tenant.as_ref().is_some_and(|t| {
            t.spec.tenant_condition == TenantCondition::Active
                && t.status
                    .as_ref()
                    .and_then(|s| s.auth_params.as_ref())
                    .is_some()
        });
        let mut conditions = Vec::new();
        let mut auth_params: Option<AuthParams> = status.auth_params.clone();
        let mut resources = status.resources.clone();
        if !tenant_ok {
            conditions.push(cond(
                Type::Authentication,
                Status::Denied,
                "NoActiveTenant",
                format!(
                    "no active Tenant for {} in {ns}: authenticate first (liqoctl peer)",
                    consumer
                        .as_ref()
                        .map(ClusterId::as_str)
                        .unwrap_or("<unknown>")
                ),
            ));
        } else if let Some(tenant) = tenant.as_ref() {
            let cap = capacity(ctx, slice).await?;
            let grant = ctx.negotiator.grant_slice(slice, tenant, &cap).await?;
            match grant.authentication {
                Some(Ok(p)) => {
                    auth_params = Some(p);
                    conditions.push(cond(
                        Type::Authentication,
                        Status::Accepted,
                        "CertificateIssued",
                        "identity certificate issued".into(),
                    ));
                }
                Some(Err(m)) => {
                    auth_params = None;
                    conditions.push(cond(Type::Authentication, Status::Denied, "InvalidCSR", m));
                }
                None => {}
            }
            match grant.resources {
                Some(Ok(r)) => {
                    resources = r;
                    conditions.push(cond(
                        Type::Resources,
                        Status::Accepted,
                        "ResourcesAccepted",
                        "resources granted".into(),
                    ));
                }
                Some(Err(m)) => {
                    resources.clear();
                    conditions.push(cond(
                        Type::Resources,
                        Status::Denied,
                        "ResourcesDenied",
                        format!(
                            "{m}; request less (liqoctl peer --cpu/--memory/--pods) or ask the \
                             provider to share more"
                        ),
                    ));
                }
                None => {}
            }
        }
        if conditions.is_empty() {
            return Ok(Action::requeue(ctx.config.resync)); // left to another controller
        }
        let conditions = merge_conditions(&status.conditions, conditions);
        let mut patch = serde_json::json!({"status": {
            "conditions": conditions,
            "resources": resources,
            "authParams": auth_params,
        }});
        if tenant_ok
            && let Some(labels) =
                cluster_labels::node_labels_patch(&status.node_labels, &ctx.config.cluster_labels)
        {
            patch["status"]["nodeLabels"] = labels;
        }
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!("answering ResourceSlice {ns}/{name}")))?;
        if tenant_ok {
            let patch = serde_json::json!({"metadata": {"annotations": {
                GRANTED_GENERATION: slice.metadata.generation.map(|g| g.to_string()),
            }}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube(format!("annotating ResourceSlice {ns}/{name}")))?;
        } else {
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        return Ok(Action::requeue(Duration::ZERO));
    }

    // The cluster labels changed since the answer (restarted with other --cluster-labels).
    if let Some(labels) =
        cluster_labels::node_labels_patch(&status.node_labels, &ctx.config.cluster_labels)
    {
        let patch = serde_json::json!({"status": {"nodeLabels": labels}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "publishing the cluster labels in ResourceSlice {ns}/{name}"
            )))?;
    }

    // Quota for the slice's identity, following the grant.
    if let Some(consumer) = consumer
        && resources_accepted(slice)
    {
        let user = names::resource_slice_common_name(&name, consumer.as_str());
        let mut quota = forge::quota(
            slice,
            &user,
            status.resources.clone(),
            ctx.config.limits_enforcement,
        );
        // Cordoned (the slice, or its whole tenant): no new pods are admitted.
        let tenant_condition = Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
            .get_opt(consumer.as_str())
            .await
            .map_err(Error::kube(format!("reading Tenant {ns}/{consumer}")))?
            .map(|t| t.spec.tenant_condition);
        let cordoned = slice
            .annotations()
            .get(auth_keys::CORDON)
            .is_some_and(|v| v == labels::TRUE)
            || tenant_condition != Some(TenantCondition::Active);
        quota.spec.cordoned = cordoned.then_some(true);
        Api::<Quota>::namespaced(ctx.client.clone(), &ns)
            .patch(&user, &apply_params(), &Patch::Apply(&quota))
            .await
            .map_err(Error::kube(format!("applying Quota {ns}/{user}")))?;
    }
    let mut requeue = ctx.config.resync;
    if let Some(d) = cert_due.and_then(|d| d.renew_in) {
        requeue = requeue.min(d);
    }
    Ok(Action::requeue(requeue))
}

/// Annotation (on the replica) with the generation of the spec the provider last answered.
const GRANTED_GENERATION: &str = "liqo.io/granted-generation";
