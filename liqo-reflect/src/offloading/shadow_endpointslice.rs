//! The ShadowEndpointSlice controller (provider side): materializes each ShadowEndpointSlice a
//! consumer's virtual kubelet wrote in a twin namespace as an EndpointSlice of the same name
//! (see [`materialize`](crate::forge::endpointslice::materialize)), owned by the shadow so
//! that the garbage collector removes it with the shadow. The Service it belongs to (label
//! `kubernetes.io/service-name`, reflected as well) then has, in the provider, the consumer's
//! endpoints next to the ones of the pods running there.
//!
//! An EndpointSlice with the same name that this controller did not create (no label
//! `endpointslice.kubernetes.io/managed-by=endpointslice.reflection.liqo.io`) is left alone and
//! reported.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action, watcher},
};
use liqo_core::api::offloading::v1beta1::ShadowEndpointSlice;
use liqo_core::labels::reflection::ENDPOINT_SLICE_MANAGED_BY_VALUE;
use liqo_core::runtime::KeyedBackoff;
use tracing::{info, warn};

use crate::forge::endpointslice::{ENDPOINT_SLICE_MANAGED_BY, materialize};
use crate::{Error, Result};

/// Server-side-apply field manager of the materialized EndpointSlices.
pub const FIELD_MANAGER: &str = "shadow-endpointslice-controller";

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often every shadow is re-checked without events.
    pub resync: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
        }
    }
}

struct Context {
    client: Client,
    config: Config,
    backoff: KeyedBackoff<String>,
}

/// The EndpointSlice to apply for `shadow` (pure): [`materialize`] plus the namespace and a
/// controller owner reference to the shadow. `None` when the shadow lacks a name or a uid.
pub fn desired(shadow: &ShadowEndpointSlice) -> Option<EndpointSlice> {
    let mut slice = materialize(shadow);
    slice.metadata.namespace = shadow.metadata.namespace.clone();
    slice.metadata.owner_references = Some(vec![OwnerReference {
        api_version: ShadowEndpointSlice::api_version(&()).into_owned(),
        kind: ShadowEndpointSlice::kind(&()).into_owned(),
        name: shadow.metadata.name.clone()?,
        uid: shadow.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    Some(slice)
}

/// Whether an existing EndpointSlice may be overwritten: it was materialized by this
/// controller (or by the reflection's forge).
pub fn is_ours(existing: &EndpointSlice) -> bool {
    existing
        .labels()
        .get(ENDPOINT_SLICE_MANAGED_BY)
        .is_some_and(|v| v == ENDPOINT_SLICE_MANAGED_BY_VALUE)
}

fn key(shadow: &ShadowEndpointSlice) -> String {
    format!(
        "{}/{}",
        shadow.namespace().unwrap_or_default(),
        shadow.name_any()
    )
}

async fn reconcile(shadow: Arc<ShadowEndpointSlice>, ctx: Arc<Context>) -> Result<Action> {
    if shadow.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change()); // the garbage collector removes the slice
    }
    let Some(slice) = desired(&shadow) else {
        return Ok(Action::await_change());
    };
    let ns = shadow.namespace().unwrap_or_default();
    let name = shadow.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(existing) = api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading EndpointSlice {ns}/{name}")))?
        && !is_ours(&existing)
    {
        warn!(slice = %key(&shadow), "an EndpointSlice with this name exists and was not \
            made by Liqo: the ShadowEndpointSlice is not materialized");
        return Ok(Action::requeue(ctx.config.resync));
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&slice),
    )
    .await
    .map_err(Error::kube(format!("applying EndpointSlice {ns}/{name}")))?;
    ctx.backoff.reset(&key(&shadow));
    Ok(Action::requeue(ctx.config.resync))
}

fn error_policy(shadow: Arc<ShadowEndpointSlice>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(shadow = %key(&shadow), %error, "ShadowEndpointSlice reconcile failed");
    Action::requeue(ctx.backoff.next(&key(&shadow)))
}

/// Runs the ShadowEndpointSlice controller until `shutdown` resolves.
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_reflect::offloading::shadow_endpointslice;
///
/// shadow_endpointslice::run(client, shadow_endpointslice::Config::default(),
///     liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        backoff: KeyedBackoff::default(),
    });
    info!("ShadowEndpointSlice controller running");
    Controller::new(
        Api::<ShadowEndpointSlice>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default().labels(&format!(
            "{ENDPOINT_SLICE_MANAGED_BY}={ENDPOINT_SLICE_MANAGED_BY_VALUE}"
        )),
    )
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| std::future::ready(()))
    .await;
    info!("ShadowEndpointSlice controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shadow() -> ShadowEndpointSlice {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "offloading.liqo.io/v1beta1",
            "kind": "ShadowEndpointSlice",
            "metadata": {"name": "web-x1", "namespace": "liqo-demo", "uid": "u-1",
                "labels": {"kubernetes.io/service-name": "web"}},
            "spec": {"template": {
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.200.0.7"], "conditions": {"ready": true}}],
                "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
            }},
        }))
        .unwrap()
    }

    #[test]
    fn the_slice_is_owned_by_its_shadow_and_labelled_as_reflected() {
        let s = desired(&shadow()).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("web-x1"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("liqo-demo"));
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ShadowEndpointSlice", "web-x1", "u-1")
        );
        assert_eq!(owner.api_version, "offloading.liqo.io/v1beta1");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(s.labels()["kubernetes.io/service-name"], "web");
        assert!(is_ours(&s));
        assert_eq!(
            s.endpoints.unwrap()[0].addresses,
            vec!["10.200.0.7".to_owned()]
        );
    }

    #[test]
    fn slices_of_others_are_not_ours_and_shadows_without_uid_are_skipped() {
        let mut foreign = desired(&shadow()).unwrap();
        foreign.metadata.labels.as_mut().unwrap().insert(
            ENDPOINT_SLICE_MANAGED_BY.into(),
            "endpointslice-controller.k8s.io".into(),
        );
        assert!(!is_ours(&foreign));
        let mut s = shadow();
        s.metadata.uid = None;
        assert!(desired(&s).is_none());
    }
}
