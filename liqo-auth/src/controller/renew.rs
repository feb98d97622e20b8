//! Renew (provider side): a consumer's replicated request for a fresh certificate, checked
//! against its Tenant's public key and answered in the status (replicated back).

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{IdentityType, Renew, Tenant};
use liqo_core::ids::ClusterId;
use liqo_core::labels::{self, replication as repl_keys};

use super::{Context, ShutdownFuture, drain};
use crate::error::{Error, Result};
use crate::negotiator::RenewRequest;

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<Renew>::all(ctx.client.clone());
    drain(
        Controller::new(
            api,
            watcher::Config::default().labels(&format!(
                "{}={}",
                repl_keys::REPLICATED,
                labels::TRUE
            )),
        )
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            |obj: Arc<Renew>, e: &Error, ctx: Arc<Context>| ctx.error_policy(obj.as_ref(), e),
            ctx,
        ),
    )
    .await;
}

async fn reconcile(renew: Arc<Renew>, ctx: Arc<Context>) -> Result<Action> {
    if renew.metadata.deletion_timestamp.is_some()
        || renew
            .status
            .as_ref()
            .is_some_and(|s| s.auth_params.is_some())
    {
        return Ok(Action::await_change());
    }
    let ns = renew.namespace().unwrap_or_default();
    let Some(consumer) = renew
        .spec
        .consumer_cluster_id
        .as_deref()
        .and_then(|c| ClusterId::new(c).ok())
    else {
        return Ok(Action::await_change());
    };
    let Some(tenant) = Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
        .get_opt(consumer.as_str())
        .await
        .map_err(Error::kube(format!("reading Tenant {ns}/{consumer}")))?
    else {
        ctx.event(
            renew.as_ref(),
            EventType::Warning,
            "RenewRefused",
            format!("no Tenant {consumer} in {ns}"),
        )
        .await;
        return Ok(Action::await_change());
    };
    let request = RenewRequest {
        consumer: consumer.clone(),
        identity_type: renew
            .spec
            .identity_type
            .unwrap_or(IdentityType::ControlPlane),
        csr: renew.spec.csr.clone().map(|c| c.0).unwrap_or_default(),
        public_key: tenant
            .spec
            .public_key
            .clone()
            .map(|c| c.0)
            .unwrap_or_default(),
        resource_slice: renew
            .spec
            .resource_slice_ref
            .as_ref()
            .map(|r| r.name.clone()),
    };
    match ctx.negotiator.renew(request).await {
        Ok(params) => {
            let patch = serde_json::json!({"status": {"authParams": params}});
            Api::<Renew>::namespaced(ctx.client.clone(), &ns)
                .patch_status(
                    &renew.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(Error::kube(format!(
                    "answering Renew {ns}/{}",
                    renew.name_any()
                )))?;
        }
        Err(e @ (Error::Kube { .. } | Error::Certificate { .. })) => return Err(e),
        Err(e) => {
            ctx.event(
                renew.as_ref(),
                EventType::Warning,
                "RenewRefused",
                e.to_string(),
            )
            .await
        }
    }
    Ok(Action::await_change())
}
