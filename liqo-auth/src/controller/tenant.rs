//! Tenant (provider side): verify the handshake, issue the control-plane certificate, bind the
//! least-privilege ClusterRole; the finalizer removes the binding.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{ResourceSlice, Tenant, TenantCondition};
use liqo_core::api::offloading::v1beta1::NamespaceMap;
use liqo_core::ids::ClusterId;
use liqo_core::labels::{self, core as core_keys, kubernetes as k8s_keys};

use super::{Context, ShutdownFuture, apply_params, drain, is_404};
use crate::crypto::{NONCE_FIELD, Nonce};
use crate::error::{Error, Result};
use crate::{forge, names, renewal};

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<Tenant>::all(ctx.client.clone());
    // A nonce Secret change (e.g. created after the Tenant) re-triggers its Tenant.
    let nonces = Api::<Secret>::all(ctx.client.clone());
    drain(
        Controller::new(api, watcher::Config::default())
            .watches(
                nonces,
                watcher::Config::default().labels(&format!(
                    "{}={}",
                    labels::authentication::NONCE,
                    labels::TRUE
                )),
                |s: Secret| {
                    let ns = s.namespace()?;
                    let id = ClusterId::from_tenant_namespace(&ns)?;
                    Some(kube::runtime::reflector::ObjectRef::new(id.as_str()).within(&ns))
                },
            )
            .graceful_shutdown_on(shutdown)
            .run(
                reconcile,
                |obj: Arc<Tenant>, e: &Error, ctx: Arc<Context>| ctx.error_policy(obj.as_ref(), e),
                ctx,
            ),
    )
    .await;
}

fn binding_name(consumer: &ClusterId) -> String {
    names::tenant_role_binding(names::REMOTE_CONTROLPLANE_CLUSTER_ROLE, consumer)
}

async fn set_finalizers(ctx: &Context, tenant: &Tenant, finalizers: Vec<String>) -> Result<()> {
    let ns = tenant.namespace().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers, "resourceVersion": tenant.resource_version(),
    }});
    Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &tenant.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "updating the finalizers of Tenant {ns}/{}",
            tenant.name_any()
        )))?;
    Ok(())
}

async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let ns = tenant.namespace().unwrap_or_default();
    let name = tenant.name_any();
    let object = format!("Tenant {ns}/{name}");
    let consumer = tenant
        .spec
        .cluster_id
        .as_deref()
        .and_then(|c| ClusterId::new(c).ok());
    let bindings = Api::<RoleBinding>::namespaced(ctx.client.clone(), &ns);

    if tenant.metadata.deletion_timestamp.is_some() {
        if let Some(consumer) = &consumer {
            match bindings
                .delete(&binding_name(consumer), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if is_404(&e) => {}
                Err(e) => {
                    return Err(Error::kube(format!("deleting the RoleBinding of {object}"))(e));
                }
            }
        }
        let rest: Vec<String> = tenant
            .finalizers()
            .iter()
            .filter(|f| *f != names::TENANT_FINALIZER)
            .cloned()
            .collect();
        if rest.len() != tenant.finalizers().len() {
            set_finalizers(&ctx, &tenant, rest).await?;
        }
        return Ok(Action::await_change());
    }
    // The Tenant must speak for the cluster its namespace belongs to (the admission policy
    // refuses anything else; checked again here before anything is issued).
    let owner = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(Error::kube(format!("reading the namespace of {object}")))?
        .and_then(|n| n.labels().get(core_keys::REMOTE_CLUSTER_ID).cloned());
    let consumer = match crate::policy::tenant_binding(&tenant, owner.as_deref()) {
        Ok(c) => c,
        Err(why) => {
            ctx.event(
                tenant.as_ref(),
                EventType::Warning,
                "TenantRefused",
                format!("{why}; nothing is issued"),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    if !tenant
        .finalizers()
        .iter()
        .any(|f| f == names::TENANT_FINALIZER)
    {
        let mut f = tenant.finalizers().to_vec();
        f.push(names::TENANT_FINALIZER.to_owned());
        set_finalizers(&ctx, &tenant, f).await?;
        return Ok(Action::requeue(Duration::ZERO));
    }

    // Drained tenants lose their permissions (upstream unbinds the cluster roles) and what
    // they were given: their replicated ResourceSlices (and so their Quotas and identities)
    // and NamespaceMaps (whose twin namespaces, with their pods and the consumer's data-plane
    // RoleBindings, the NamespaceMap controller deletes).
    if tenant.spec.tenant_condition == TenantCondition::Drained {
        match bindings
            .delete(&binding_name(&consumer), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_404(&e) => {}
            Err(e) => return Err(Error::kube(format!("unbinding {object}"))(e)),
        }
        let replicas = kube::api::ListParams::default().labels(&format!(
            "{}={}",
            labels::replication::REPLICATED,
            labels::TRUE
        ));
        let slices = Api::<ResourceSlice>::namespaced(ctx.client.clone(), &ns);
        let maps = Api::<NamespaceMap>::namespaced(ctx.client.clone(), &ns);
        let drained = slices
            .list(&replicas)
            .await
            .map_err(Error::kube(format!(
                "listing the ResourceSlices of {object}"
            )))?
            .items
            .len()
            + maps
                .list(&replicas)
                .await
                .map_err(Error::kube(format!(
                    "listing the NamespaceMaps of {object}"
                )))?
                .items
                .len();
        if drained > 0 {
            slices
                .delete_collection(&DeleteParams::default(), &replicas)
                .await
                .map_err(Error::kube(format!(
                    "draining the ResourceSlices of {object}"
                )))?;
            maps.delete_collection(&DeleteParams::default(), &replicas)
                .await
                .map_err(Error::kube(format!(
                    "draining the NamespaceMaps of {object}"
                )))?;
            ctx.event(
                tenant.as_ref(),
                EventType::Normal,
                "TenantDrained",
                format!(
                    "{consumer} drained: its ResourceSlices and NamespaceMaps are deleted, with \
                     the namespaces and pods they gave it"
                ),
            )
            .await;
        }
        return Ok(Action::requeue(ctx.config.resync));
    }

    // Issue (or renew) the certificate.
    let current = tenant
        .status
        .as_ref()
        .and_then(|s| s.auth_params.as_ref())
        .and_then(|p| p.signed_crt.as_ref())
        .map(|c| c.0.clone());
    let decision = current
        .as_deref()
        .and_then(|c| renewal::lifetime(c).ok())
        .map(|l| renewal::decide(l, renewal::now()));
    let needs_issue = decision.is_none_or(|d| d.renew_now);
    let mut requeue = ctx.config.resync;
    if needs_issue {
        let nonce = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(names::NONCE_SECRET)
            .await
            .map_err(Error::kube(format!("reading the nonce of {object}")))?
            .and_then(|s| s.data?.get(NONCE_FIELD).map(|b| b.0.clone()));
        let Some(nonce) = nonce.and_then(|n| Nonce::from_secret_data(&n).ok()) else {
            ctx.event(
                tenant.as_ref(),
                EventType::Warning,
                "NonceMissing",
                format!(
                    "no nonce in Secret {ns}/{}: the Tenant cannot be verified",
                    names::NONCE_SECRET
                ),
            )
            .await;
            return Ok(Action::requeue(Duration::from_secs(10)));
        };
        match ctx.negotiator.issue_identity(&tenant, &nonce).await {
            Ok(params) => {
                let patch = serde_json::json!({"status": {
                    "tenantNamespace": ns, "authParams": params,
                }});
                Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(Error::kube(format!("writing the status of {object}")))?;
                ctx.event(
                    tenant.as_ref(),
                    EventType::Normal,
                    "TenantAccepted",
                    format!("control-plane certificate issued to {consumer}"),
                )
                .await;
            }
            Err(e @ (Error::Kube { .. } | Error::Certificate { .. })) => return Err(e),
            Err(e) => {
                // Refused: tampered signature, wrong CSR, id collision... Nothing is granted.
                ctx.event(
                    tenant.as_ref(),
                    EventType::Warning,
                    "TenantRefused",
                    format!("{e}; recreate the Tenant with `liqoctl peer` from {consumer}"),
                )
                .await;
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
        }
    } else if let Some(d) = decision.and_then(|d| d.renew_in) {
        requeue = requeue.min(d + d / 10);
    }

    // Least-privilege RBAC: the consumer's control-plane user in its tenant namespace only.
    let labels = BTreeMap::from([
        (
            core_keys::REMOTE_CLUSTER_ID.to_owned(),
            consumer.to_string(),
        ),
        (
            k8s_keys::APP_MANAGED_BY.to_owned(),
            core_keys::LIQO.to_owned(),
        ),
    ]);
    let mut rb = forge::role_binding(
        &binding_name(&consumer),
        &ns,
        "ClusterRole",
        names::REMOTE_CONTROLPLANE_CLUSTER_ROLE,
        consumer.as_str(),
        labels,
    );
    rb.metadata.owner_references = forge::owner_reference(tenant.as_ref()).map(|o| vec![o]);
    bindings
        .patch(
            &binding_name(&consumer),
            &apply_params(),
            &Patch::Apply(&rb),
        )
        .await
        .map_err(Error::kube(format!(
            "binding the control-plane role of {object}"
        )))?;
    ctx.reset_backoff(tenant.as_ref());
    Ok(Action::requeue(requeue))
}
