//! Nonce Secrets: the provider fills `liqo-nonce`, the consumer signs `liqo-signed-nonce`.

use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::labels::{self, authentication as auth_keys};

use super::{Context, ShutdownFuture, drain};
use crate::crypto::{NONCE_FIELD, Nonce, SIGNED_NONCE_FIELD};
use crate::error::{Error, Result};

fn selector(label: &str) -> watcher::Config {
    watcher::Config::default().labels(&format!("{label}={}", labels::TRUE))
}

pub(super) async fn run_creator(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<Secret>::all(ctx.client.clone());
    drain(
        Controller::new(api, selector(auth_keys::NONCE))
            .graceful_shutdown_on(shutdown)
            .run(
                create,
                |obj: Arc<Secret>, e: &Error, ctx: Arc<Context>| ctx.error_policy(obj.as_ref(), e),
                ctx,
            ),
    )
    .await;
}

pub(super) async fn run_signer(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let api = Api::<Secret>::all(ctx.client.clone());
    drain(
        Controller::new(api, selector(auth_keys::SIGNED_NONCE))
            .graceful_shutdown_on(shutdown)
            .run(
                sign,
                |obj: Arc<Secret>, e: &Error, ctx: Arc<Context>| ctx.error_policy(obj.as_ref(), e),
                ctx,
            ),
    )
    .await;
}

fn field(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty())
}

async fn patch_data(ctx: &Context, secret: &Secret, key: &str, value: Vec<u8>) -> Result<()> {
    let ns = secret.namespace().unwrap_or_default();
    let patch = serde_json::json!({"data": {key: ByteString(value)}});
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &secret.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "writing {key} in Secret {ns}/{}",
            secret.name_any()
        )))?;
    Ok(())
}

async fn create(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action> {
    if secret.metadata.deletion_timestamp.is_some() || field(&secret, NONCE_FIELD).is_some() {
        return Ok(Action::await_change());
    }
    let Some(consumer) = labels::remote_cluster_id_from(secret.labels())
        .ok()
        .flatten()
    else {
        ctx.event(
            secret.as_ref(),
            EventType::Warning,
            "MissingClusterID",
            format!(
                "label {} is missing or invalid",
                labels::core::REMOTE_CLUSTER_ID
            ),
        )
        .await;
        return Ok(Action::await_change());
    };
    match ctx.negotiator.create_nonce(&consumer).await {
        Ok(nonce) => {
            patch_data(
                &ctx,
                &secret,
                NONCE_FIELD,
                nonce.as_base64().as_bytes().to_vec(),
            )
            .await?;
            ctx.event(
                secret.as_ref(),
                EventType::Normal,
                "NonceGenerated",
                format!("nonce generated for {consumer}"),
            )
            .await;
        }
        Err(e) => {
            ctx.event(
                secret.as_ref(),
                EventType::Warning,
                "NonceRefused",
                e.to_string(),
            )
            .await
        }
    }
    ctx.reset_backoff(secret.as_ref());
    Ok(Action::await_change())
}

async fn sign(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action> {
    if secret.metadata.deletion_timestamp.is_some() || field(&secret, SIGNED_NONCE_FIELD).is_some()
    {
        return Ok(Action::await_change());
    }
    let Some(raw) = field(&secret, NONCE_FIELD) else {
        return Ok(Action::await_change());
    };
    let Some(provider) = labels::remote_cluster_id_from(secret.labels())
        .ok()
        .flatten()
    else {
        return Ok(Action::await_change());
    };
    let nonce = match Nonce::from_secret_data(&raw) {
        Ok(n) => n,
        Err(e) => {
            ctx.event(
                secret.as_ref(),
                EventType::Warning,
                "InvalidNonce",
                e.to_string(),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    let signature = ctx.negotiator.sign_nonce(&provider, &nonce).await?;
    patch_data(&ctx, &secret, SIGNED_NONCE_FIELD, signature.into_bytes()).await?;
    ctx.reset_backoff(secret.as_ref());
    Ok(Action::await_change())
}
