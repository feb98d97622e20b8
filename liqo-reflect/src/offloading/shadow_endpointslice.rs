//! The ShadowEndpointSlice controller (provider side): materializes each ShadowEndpointSlice a
//! consumer's virtual kubelet wrote in a twin namespace as an EndpointSlice of the same name
//! (see [`materialize`](crate::forge::endpointslice::materialize)), controlled by the shadow,
//! and deletes it when the shadow goes (without waiting for the garbage collector). The
//! Service it belongs to (label `kubernetes.io/service-name`, reflected as well) then has, in
//! the provider, the consumer's endpoints next to the ones of the pods running there.
//!
//! It reads shadows and its own slices from watch caches and writes only when a slice differs
//! from its shadow ([`up_to_date`]). An EndpointSlice with the same name that this controller
//! did not make (no label
//! `endpointslice.kubernetes.io/managed-by=endpointslice.reflection.liqo.io`) is left alone
//! and reported, and retried with backoff.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::watcher,
};
use liqo_core::api::offloading::v1beta1::ShadowEndpointSlice;
use liqo_core::labels::reflection::ENDPOINT_SLICE_MANAGED_BY_VALUE;

use crate::forge::endpointslice::{ENDPOINT_SLICE_MANAGED_BY, materialize};
use crate::{
    Error, Result,
    materialize::{self as materializing, Materializer, Watches},
    worker::Outcome,
};

/// Server-side-apply field manager of the materialized EndpointSlices.
pub const FIELD_MANAGER: &str = "shadow-endpointslice-controller";

/// Settings of the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Concurrent reconciles.
    pub workers: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self { workers: 10 }
    }
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

/// Whether `existing` already is what [`desired`] asks for: its labels, annotations and owner
/// references include the desired ones, and the address type, endpoints and ports are equal.
pub fn up_to_date(existing: &EndpointSlice, desired: &EndpointSlice) -> bool {
    let includes = |have: &Option<std::collections::BTreeMap<String, String>>,
                    want: &Option<std::collections::BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let owners = |s: &EndpointSlice| s.metadata.owner_references.clone().unwrap_or_default();
    includes(&existing.metadata.labels, &desired.metadata.labels)
        && includes(
            &existing.metadata.annotations,
            &desired.metadata.annotations,
        )
        && owners(desired).iter().all(|o| owners(existing).contains(o))
        && existing.address_type == desired.address_type
        && existing.endpoints.clone().unwrap_or_default()
            == desired.endpoints.clone().unwrap_or_default()
        && existing.ports.clone().unwrap_or_default() == desired.ports.clone().unwrap_or_default()
}

/// The ShadowEndpointSlice materializer.
struct Slices;

#[async_trait]
impl Materializer for Slices {
    type Shadow = ShadowEndpointSlice;
    type Made = EndpointSlice;
    const KIND: &'static str = "ShadowEndpointSlice";

    async fn reconcile(
        &self,
        client: &Client,
        key: &str,
        shadow: Arc<ShadowEndpointSlice>,
        existing: Option<Arc<EndpointSlice>>,
    ) -> Result<Outcome> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        if shadow.metadata.deletion_timestamp.is_some() {
            return Ok(Outcome::Unchanged);
        }
        let Some(slice) = desired(&shadow) else {
            return Ok(Outcome::Unchanged);
        };
        if existing.as_deref().is_some_and(|e| up_to_date(e, &slice)) {
            return Ok(Outcome::Unchanged);
        }
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        if existing.is_none() {
            // Not in the cache of ours: create it, and if the name is taken find out by whom.
            match api.create(&PostParams::default(), &slice).await {
                Ok(_) => return Ok(Outcome::Written),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let taken = api.get_opt(name).await.map_err(Error::kube(format!(
                        "reading EndpointSlice {namespace}/{name}"
                    )))?;
                    if taken.is_some_and(|t| !is_ours(&t)) {
                        return Err(Error::NotManaged {
                            kind: "EndpointSlice".to_owned(),
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                }
                Err(e) => {
                    return Err(Error::kube(format!(
                        "creating EndpointSlice {namespace}/{name}"
                    ))(e));
                }
            }
        }
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&slice),
        )
        .await
        .map_err(Error::kube(format!(
            "applying EndpointSlice {namespace}/{name}"
        )))?;
        Ok(Outcome::Written)
    }
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
    let watches = Watches {
        shadows: Api::<ShadowEndpointSlice>::all(client.clone()),
        made: Api::<EndpointSlice>::all(client.clone()),
        made_config: watcher::Config::default().labels(&format!(
            "{ENDPOINT_SLICE_MANAGED_BY}={ENDPOINT_SLICE_MANAGED_BY_VALUE}"
        )),
        slim: |_| {},
    };
    materializing::run(Slices, client, watches, config.workers, shutdown).await;
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

    #[test]
    fn a_slice_is_up_to_date_until_its_shadow_changes() {
        let want = desired(&shadow()).unwrap();
        let mut have = want.clone();
        // What the API server and others add does not count.
        have.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("extra".into(), "x".into());
        have.metadata.resource_version = Some("42".into());
        assert!(up_to_date(&have, &want));
        let mut moved = shadow();
        moved.spec.template.as_mut().unwrap().endpoints[0].addresses = vec!["10.200.0.8".into()];
        assert!(!up_to_date(&have, &desired(&moved).unwrap()));
        have.metadata.owner_references = None;
        assert!(!up_to_date(&have, &want));
    }
}
