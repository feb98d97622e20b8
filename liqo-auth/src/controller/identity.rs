//! Identity (consumer side): kubeconfig Secret `kubeconfig-<identity>`, and renewal of the
//! control-plane certificate through a replicated `Renew` at two thirds of its lifetime.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{Identity, IdentityType, Renew};
use liqo_core::ids::ClusterId;

use super::{Context, ShutdownFuture, apply_params, drain, is_404};
use crate::error::{Error, Result};
use crate::kubeconfig::{self, KubeconfigParts};
use crate::{crypto, forge, names, renewal};

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<Identity>::all(ctx.client.clone());
    let renews = Api::<Renew>::all(ctx.client.clone());
    drain(
        Controller::new(api, watcher::Config::default())
            .owns(renews, watcher::Config::default())
            .graceful_shutdown_on(shutdown)
            .run(
                reconcile,
                |obj: Arc<Identity>, e: &Error, ctx: Arc<Context>| {
                    ctx.error_policy(obj.as_ref(), e)
                },
                ctx,
            ),
    )
    .await;
}

/// The kubeconfig YAML of an identity.
pub(crate) fn render(ctx: &Context, identity: &Identity, provider: &ClusterId) -> Result<String> {
    let object = format!("Identity {}", identity.name_any());
    let params = identity
        .spec
        .auth_params
        .as_ref()
        .ok_or_else(|| Error::Incomplete {
            object: object.clone(),
            reason: "no spec.authParams".into(),
        })?;
    let get = |f: &Option<k8s_openapi::ByteString>, what: &str| {
        f.as_ref()
            .map(|b| b.0.clone())
            .ok_or_else(|| Error::Incomplete {
                object: object.clone(),
                reason: format!("no spec.authParams.{what}"),
            })
    };
    kubeconfig::render(&KubeconfigParts {
        cluster_name: provider.to_string(),
        user: ctx.config.cluster_id.to_string(),
        server: params.api_server.clone().ok_or_else(|| Error::Incomplete {
            object: object.clone(),
            reason: "no spec.authParams.apiServer".into(),
        })?,
        ca_pem: get(&params.ca, "ca")?,
        cert_pem: get(&params.signed_crt, "signedCRT")?,
        key_pem: ctx.config.keys.to_pkcs8_pem().into_bytes(),
        proxy_url: params.proxy_url.clone(),
    })
}

async fn reconcile(identity: Arc<Identity>, ctx: Arc<Context>) -> Result<Action> {
    if identity.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = identity.namespace().unwrap_or_default();
    let name = identity.name_any();
    let Some(provider) = identity
        .spec
        .cluster_id
        .as_deref()
        .and_then(|c| ClusterId::new(c).ok())
    else {
        return Ok(Action::await_change());
    };
    let renews = Api::<Renew>::namespaced(ctx.client.clone(), &ns);

    // A renewed certificate came back: adopt it, then drop the Renew.
    if let Some(renew) = renews
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading Renew {ns}/{name}")))?
        && let Some(params) = renew.status.as_ref().and_then(|s| s.auth_params.clone())
        && params.signed_crt.is_some()
    {
        if identity.spec.auth_params.as_ref().map(|p| &p.signed_crt) != Some(&params.signed_crt) {
            let patch = serde_json::json!({"spec": {"authParams": params}});
            Api::<Identity>::namespaced(ctx.client.clone(), &ns)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube(format!("renewing Identity {ns}/{name}")))?;
        }
        match renews.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_404(&e) => {}
            Err(e) => return Err(Error::kube(format!("deleting Renew {ns}/{name}"))(e)),
        }
        return Ok(Action::requeue(Duration::ZERO));
    }

    let yaml = render(&ctx, &identity, &provider)?;
    let secret = forge::kubeconfig_secret(&identity, &provider, &yaml);
    let secret_name = names::kubeconfig_secret(&name);
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(&secret_name, &apply_params(), &Patch::Apply(&secret))
        .await
        .map_err(Error::kube(format!("applying Secret {ns}/{secret_name}")))?;
    if identity
        .status
        .as_ref()
        .and_then(|s| s.kubeconfig_secret_ref.as_ref())
        .map(|r| r.name.as_str())
        != Some(secret_name.as_str())
    {
        let patch = serde_json::json!({"status": {"kubeconfigSecretRef": {"name": secret_name}}});
        Api::<Identity>::namespaced(ctx.client.clone(), &ns)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "writing the status of Identity {ns}/{name}"
            )))?;
    }

    // Renewal of control-plane certificates (ResourceSlice ones are renewed by the provider
    // in the replicated slice's status).
    let mut requeue = ctx.config.resync;
    if identity.spec.type_ == Some(IdentityType::ControlPlane)
        && let Some(cert) = identity
            .spec
            .auth_params
            .as_ref()
            .and_then(|p| p.signed_crt.as_ref())
        && let Ok(lifetime) = renewal::lifetime(&cert.0)
    {
        let decision = renewal::decide(lifetime, renewal::now());
        if decision.renew_now {
            let csr = crypto::create_csr(&ctx.config.keys, &ctx.config.cluster_id)?;
            let renew = forge::renew(
                &identity,
                &ctx.config.cluster_id,
                &provider,
                &ctx.config.keys.public_key_pem(),
                &csr,
            );
            match renews.create(&PostParams::default(), &renew).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(Error::kube(format!("creating Renew {ns}/{name}"))(e)),
            }
        } else if let Some(d) = decision.renew_in {
            requeue = requeue.min(d);
        }
    }
    ctx.reset_backoff(identity.as_ref());
    Ok(Action::requeue(requeue))
}
