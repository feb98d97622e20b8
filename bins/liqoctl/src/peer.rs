//! `liqoctl peer`: the consumer (local cluster) peers with the provider (remote cluster).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource as _, ResourceExt as _};
use liqo_auth::controller::foreigncluster::module_state;
use liqo_auth::crypto::{self, NONCE_FIELD, SIGNED_NONCE_FIELD};
use liqo_auth::{Nonce, Signature, bootstrap, forge, names};
use liqo_core::api::authentication::v1beta1::{
    AuthParams, Identity, IdentityType, ResourceSlice, ResourceSliceConditionStatus,
    ResourceSliceConditionType, Tenant,
};
use liqo_core::api::core::v1beta1::ForeignCluster;
use liqo_core::api::offloading::v1beta1::VirtualNode;

use crate::cluster::Conn;
use crate::progress::{Progress, wait_for};

/// Options of one direction of peering.
#[derive(Debug, Clone)]
pub(crate) struct PeerOptions {
    pub(crate) resources: BTreeMap<String, Quantity>,
    pub(crate) skip_networking: bool,
    pub(crate) timeout: Duration,
}

pub(crate) fn field_manager() -> PatchParams {
    PatchParams::apply("liqoctl").force()
}

/// Creates the tenant namespace of `peer` on `on` unless it exists (get first, so a
/// least-privilege peering user that may only `get` namespaces works). Returns whether it was
/// created.
pub(crate) async fn ensure_tenant_namespace(
    on: &Conn,
    peer: &liqo_core::ids::ClusterId,
) -> anyhow::Result<bool> {
    let api = Api::<Namespace>::all(on.client.clone());
    let name = peer.tenant_namespace();
    match api.get_opt(&name).await {
        Ok(Some(_)) => return Ok(false),
        Ok(None) => {}
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading namespace {name} on {}", on.id)),
    }
    match api
        .create(&PostParams::default(), &forge::tenant_namespace(peer))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name} on {}", on.id)),
    }
}

fn secret_field(s: &Secret, key: &str) -> Option<Vec<u8>> {
    s.data
        .as_ref()?
        .get(key)
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty())
}

/// Latest warning event about an object, if the kubeconfig may read events.
async fn refusal(on: &Conn, namespace: &str, kind: &str, name: &str) -> Option<String> {
    let events = Api::<Event>::namespaced(on.client.clone(), namespace)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind={kind},involvedObject.name={name},type=Warning"
        )))
        .await
        .ok()?;
    events
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref().is_some_and(|r| r.ends_with("Refused")))
        .max_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0))
        .and_then(|e| e.message)
}

/// Runs the whole direction consumer → provider. On failure of a fresh peering, removes what
/// was created on both sides.
pub(crate) async fn peer(
    progress: &Progress,
    consumer: &Conn,
    provider: &Conn,
    opts: &PeerOptions,
) -> anyhow::Result<()> {
    let existed =
        Api::<Tenant>::namespaced(provider.client.clone(), &consumer.id.tenant_namespace())
            .get_opt(consumer.id.as_str())
            .await
            .ok()
            .flatten()
            .is_some();
    let result = peer_steps(progress, consumer, provider, opts).await;
    if let Err(e) = &result
        && !existed
    {
        println!("  peering failed: removing what it created on both clusters");
        let cleanup = crate::unpeer::UnpeerOptions {
            keep_namespaces: false,
            force: false,
            timeout: Duration::from_secs(30),
        };
        if let Err(c) =
            crate::unpeer::unpeer(&Progress::new(true), consumer, Some(provider), &cleanup).await
        {
            eprintln!("warning: cleanup after the failure was incomplete: {c:#}");
        }
        return Err(anyhow!("{e:#}"));
    }
    result
}

async fn peer_steps(
    progress: &Progress,
    consumer: &Conn,
    provider: &Conn,
    opts: &PeerOptions,
) -> anyhow::Result<()> {
    let (c, p) = (&consumer.id, &provider.id);
    let c_ns = p.tenant_namespace(); // on the consumer
    let p_ns = c.tenant_namespace(); // on the provider
    let t = opts.timeout;

    if !opts.skip_networking {
        crate::network::connect(progress, consumer, provider, t).await?;
    }

    progress
        .step(
            format!("tenant namespaces {c_ns} on {c} and {p_ns} on {p}"),
            async {
                ensure_tenant_namespace(consumer, p).await?;
                ensure_tenant_namespace(provider, c).await?;
                Ok(())
            },
        )
        .await?;

    // B2: nonce issued by the provider.
    let nonce = progress
        .step(format!("nonce issued by {p}"), async {
            let secrets = Api::<Secret>::namespaced(provider.client.clone(), &p_ns);
            match secrets
                .create(&PostParams::default(), &forge::nonce_secret(c))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                // A least-privilege peering user may not create Secrets: the provider's
                // administrator created the nonce with the user (liqoctl generate peering-user).
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    if secrets.get_opt(names::NONCE_SECRET).await?.is_none() {
                        bail!(
                            "there is no nonce for {c} on {p} and this kubeconfig may not create \
                             one: ask the administrator of {p} to run `liqoctl generate \
                             peering-user --consumer-cluster-id {c}` again"
                        );
                    }
                }
                Err(e) => return Err(e).context(format!("creating Secret {p_ns}/liqo-nonce on {p}")),
            }
            wait_for(
                t,
                || format!("Secret {p_ns}/liqo-nonce on {p} got no nonce: is liqo-controller-manager running on {p}?"),
                || async {
                    let s = secrets.get_opt(names::NONCE_SECRET).await?;
                    Ok(s.and_then(|s| secret_field(&s, NONCE_FIELD))
                        .and_then(|n| Nonce::from_secret_data(&n).ok()))
                },
            )
            .await
        })
        .await?;

    // B3: nonce signed by the consumer.
    let signature = progress
        .step(format!("nonce signed by {c}"), async {
            let secrets = Api::<Secret>::namespaced(consumer.client.clone(), &c_ns);
            let desired = forge::signed_nonce_secret(p, &nonce);
            if let Some(existing) = secrets.get_opt(names::SIGNED_NONCE_SECRET).await?
                && secret_field(&existing, NONCE_FIELD).as_deref()
                    != Some(nonce.as_base64().as_bytes())
            {
                // A stale nonce from an earlier attempt: sign the current one.
                secrets
                    .delete(names::SIGNED_NONCE_SECRET, &Default::default())
                    .await?;
                wait_for(t, || "old signed nonce not deleted".into(), || async {
                    Ok(secrets.get_opt(names::SIGNED_NONCE_SECRET).await?.is_none().then_some(()))
                })
                .await?;
            }
            match secrets.create(&PostParams::default(), &desired).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e).context(format!("creating Secret {c_ns}/liqo-signed-nonce on {c}")),
            }
            wait_for(
                t,
                || format!("Secret {c_ns}/liqo-signed-nonce on {c} was not signed: is liqo-controller-manager running on {c}?"),
                || async {
                    let s = secrets.get_opt(names::SIGNED_NONCE_SECRET).await?;
                    Ok(s.and_then(|s| secret_field(&s, SIGNED_NONCE_FIELD)).map(Signature::from_bytes))
                },
            )
            .await
        })
        .await?;

    // B5: Tenant on the provider, verified by its controller.
    let params = progress
        .step(format!("Tenant {c} accepted by {p}"), async {
            let keys = bootstrap::read_keys(&consumer.client, &consumer.namespace).await?;
            let csr = crypto::create_csr(&keys, c)?;
            let tenant = forge::tenant(c, &keys.public_key_pem(), &csr, &signature, None);
            let tenants = Api::<Tenant>::namespaced(provider.client.clone(), &p_ns);
            if let Some(existing) = tenants.get_opt(c.as_str()).await?
                && existing.status.as_ref().and_then(|s| s.auth_params.as_ref()).is_some()
                && existing.spec.public_key == tenant.spec.public_key
            {
                // Already accepted: keep it (re-running is safe).
            } else {
                tenants
                    .patch(c.as_str(), &field_manager(), &Patch::Apply(&tenant))
                    .await
                    .with_context(|| format!("creating Tenant {p_ns}/{c} on {p}"))?;
            }
            wait_for(
                t,
                || format!("Tenant {p_ns}/{c} on {p} was not accepted: is liqo-controller-manager running on {p}?"),
                || async {
                    let tn = tenants.get_opt(c.as_str()).await?;
                    if let Some(params) = tn.as_ref().and_then(|t| t.status.as_ref()?.auth_params.clone()) {
                        return Ok(Some(params));
                    }
                    if let Some(reason) = refusal(provider, &p_ns, "Tenant", c.as_str()).await {
                        bail!("{p} refused the Tenant of {c}: {reason}");
                    }
                    Ok(None)
                },
            )
            .await
        })
        .await?;

    // B6: control-plane Identity on the consumer.
    progress
        .step(format!("Identity controlplane-{p} on {c}"), async {
            let identity = forge::identity(
                &names::control_plane_identity(p),
                IdentityType::ControlPlane,
                p,
                params.clone(),
                &p_ns,
            );
            apply_identity(consumer, &identity, &params).await?;
            let secrets = Api::<Secret>::namespaced(consumer.client.clone(), &c_ns);
            let name = names::kubeconfig_secret(&names::control_plane_identity(p));
            wait_for(
                t,
                || format!("no kubeconfig Secret {c_ns}/{name} on {c}: is liqo-controller-manager running on {c}?"),
                || async { Ok(secrets.get_opt(&name).await?.map(|_| ())) },
            )
            .await
        })
        .await?;

    // C1: ResourceSlice on the consumer, replicated to and answered by the provider.
    let slice_name = p.to_string();
    progress
        .step(
            format!("ResourceSlice {slice_name} accepted by {p}"),
            async {
                let slices = Api::<ResourceSlice>::namespaced(consumer.client.clone(), &c_ns);
                let desired = forge::resource_slice(&slice_name, p, opts.resources.clone(), None);
                let current = slices.get_opt(&slice_name).await?;
                if current.as_ref().map(|s| &s.spec.resources) != Some(&desired.spec.resources) {
                    let patch = serde_json::json!({
                        "apiVersion": ResourceSlice::api_version(&()),
                        "kind": ResourceSlice::kind(&()),
                        "metadata": desired.metadata,
                        "spec": {
                            "providerClusterID": desired.spec.provider_cluster_id,
                            "resources": desired.spec.resources,
                            "class": desired.spec.class,
                        },
                    });
                    slices
                        .patch(&slice_name, &field_manager(), &Patch::Apply(&patch))
                        .await
                        .with_context(|| {
                            format!("creating ResourceSlice {c_ns}/{slice_name} on {c}")
                        })?;
                }
                wait_for(
                    t,
                    || {
                        format!(
                            "ResourceSlice {c_ns}/{slice_name} was not answered by {p}: are \
                     liqo-controller-manager running on both clusters and {p}'s API server \
                     reachable from {c}?"
                        )
                    },
                    || async {
                        let Some(s) = slices.get_opt(&slice_name).await? else {
                            return Ok(None);
                        };
                        // The answer must be for the current request.
                        if s.status
                            .as_ref()
                            .map(|st| st.conditions.is_empty())
                            .unwrap_or(true)
                        {
                            return Ok(None);
                        }
                        let st = s.status.clone().unwrap_or_default();
                        let get = |t| st.conditions.iter().find(|c| c.type_ == t);
                        for (ty, what) in [
                            (ResourceSliceConditionType::Authentication, "authentication"),
                            (ResourceSliceConditionType::Resources, "resources"),
                        ] {
                            if let Some(cond) = get(ty)
                                && cond.status == ResourceSliceConditionStatus::Denied
                            {
                                bail!(
                                    "{p} denied the {what} of ResourceSlice {slice_name}: {}",
                                    cond.message.clone().unwrap_or_default()
                                );
                            }
                        }
                        let ok = get(ResourceSliceConditionType::Authentication).is_some()
                            && get(ResourceSliceConditionType::Resources).is_some()
                            && st
                                .resources
                                .iter()
                                .all(|(k, v)| opts.resources.get(k).is_none_or(|want| want == v));
                        Ok(ok.then_some(()))
                    },
                )
                .await
            },
        )
        .await?;

    progress
        .step(format!("VirtualNode {slice_name} on {c}"), async {
            let vns = Api::<VirtualNode>::namespaced(consumer.client.clone(), &c_ns);
            wait_for(
                t,
                || format!("no VirtualNode {c_ns}/{slice_name} on {c}: is the offloading module of liqo-controller-manager enabled on {c}?"),
                || async { Ok(vns.get_opt(&slice_name).await?.map(|_| ())) },
            )
            .await
        })
        .await?;

    progress
        .step(format!("ForeignCluster {p} established on {c}"), async {
            let fcs = Api::<ForeignCluster>::all(consumer.client.clone());
            wait_for(
                t,
                || format!("ForeignCluster {p} on {c} does not report every module Established"),
                || async {
                    let Some(fc) = fcs.get_opt(p.as_str()).await? else {
                        return Ok(None);
                    };
                    let Some(m) = fc.status.and_then(|s| s.modules) else {
                        return Ok(None);
                    };
                    let ok = module_state(&m.authentication) == "Established"
                        && module_state(&m.offloading) == "Established"
                        && (opts.skip_networking || module_state(&m.networking) == "Established");
                    Ok(ok.then_some(()))
                },
            )
            .await?;
            // Versions of both sides, for `liqoctl info` (best effort).
            for (on, other) in [(consumer, provider), (provider, consumer)] {
                if let Some(v) = &other.version {
                    let patch = serde_json::json!({"metadata": {"annotations": {
                        names::REMOTE_VERSION_ANNOTATION: v,
                    }}});
                    let _ = Api::<ForeignCluster>::all(on.client.clone())
                        .patch(
                            other.id.as_str(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await;
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

async fn apply_identity(on: &Conn, identity: &Identity, params: &AuthParams) -> anyhow::Result<()> {
    let api = Api::<Identity>::namespaced(
        on.client.clone(),
        identity.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = identity.name_any();
    if let Some(existing) = api.get_opt(&name).await?
        && existing.spec.auth_params.as_ref() == Some(params)
    {
        return Ok(());
    }
    api.patch(&name, &field_manager(), &Patch::Apply(identity))
        .await
        .with_context(|| format!("creating Identity {name}"))?;
    Ok(())
}
