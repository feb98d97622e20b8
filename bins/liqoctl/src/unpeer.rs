//! `liqoctl unpeer`: removes what `liqoctl peer` created, on both clusters.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt as _};
use liqo_auth::names;
use liqo_core::api::authentication::v1beta1::{Identity, Renew, ResourceSlice, Tenant};
use liqo_core::api::core::v1beta1::ForeignCluster;
use liqo_core::api::networking::v1beta1::{Configuration, GatewayClient, GatewayServer, PublicKey};
use liqo_core::api::offloading::v1beta1::{NamespaceMap, Quota, VirtualNode};
use liqo_core::labels::{self, authentication as auth_keys, replication as repl_keys};
use serde::de::DeserializeOwned;

use crate::cluster::{Conn, is_404};
use crate::progress::{Progress, wait_for};

/// Options of `unpeer`.
#[derive(Debug, Clone)]
pub(crate) struct UnpeerOptions {
    pub(crate) keep_namespaces: bool,
    pub(crate) force: bool,
    pub(crate) timeout: Duration,
}

fn tolerate(e: kube::Error) -> anyhow::Result<()> {
    match e {
        e if is_404(&e) => Ok(()),
        kube::Error::Api(s) if s.code == 403 => Ok(()), // a least-privilege user: skip
        e => Err(e.into()),
    }
}

/// Deletes the objects of `api` matching `lp` (stripping their finalizers when `strip`) and
/// waits until they are gone.
async fn delete_all<K>(
    api: &Api<K>,
    lp: &ListParams,
    strip: bool,
    timeout: Duration,
    hint: &str,
) -> anyhow::Result<usize>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + serde::Serialize,
{
    let list = match api.list(lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tolerate(e)?;
            return Ok(0);
        }
    };
    let n = list.len();
    for obj in &list {
        if strip && !obj.finalizers().is_empty() {
            let patch = serde_json::json!({"metadata": {"finalizers": null}});
            api.patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .or_else(tolerate)?;
        }
        api.delete(&obj.name_any(), &DeleteParams::background())
            .await
            .map(|_| ())
            .or_else(tolerate)?;
    }
    if n > 0 {
        let kind = K::kind(&()).to_string();
        wait_for(
            timeout,
            || format!("{kind}s still present: {hint}"),
            || async {
                Ok(api
                    .list(lp)
                    .await
                    .map(|l| l.items.is_empty())
                    .unwrap_or(true)
                    .then_some(()))
            },
        )
        .await?;
    }
    Ok(n)
}

async fn delete_one<K>(api: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    api.delete(name, &DeleteParams::background())
        .await
        .map(|_| ())
        .or_else(tolerate)
}

/// Whether `cluster` knows `peer`: a ForeignCluster named after it or its tenant namespace.
async fn is_peer(cluster: &Conn, peer: &liqo_core::ids::ClusterId) -> anyhow::Result<bool> {
    let fc = Api::<ForeignCluster>::all(cluster.client.clone())
        .get_opt(peer.as_str())
        .await;
    let ns = Api::<Namespace>::all(cluster.client.clone())
        .get_opt(&peer.tenant_namespace())
        .await;
    Ok(matches!(fc, Ok(Some(_)) | Err(_)) || matches!(ns, Ok(Some(_)) | Err(_)))
}

async fn is_peer_provider(
    provider: Option<&Conn>,
    consumer: &liqo_core::ids::ClusterId,
) -> anyhow::Result<bool> {
    match provider {
        Some(p) => is_peer(p, consumer).await,
        None => Ok(false),
    }
}

/// Unpeers `consumer` from a reachable `provider`.
pub(crate) async fn unpeer(
    progress: &Progress,
    consumer: &Conn,
    provider: Option<&Conn>,
    opts: &UnpeerOptions,
) -> anyhow::Result<()> {
    let Some(p) = provider.map(|p| p.id.clone()) else {
        anyhow::bail!("the provider is needed (or use --force with --remote-cluster-id)");
    };
    unpeer_ids(progress, consumer, provider, &p, opts).await
}

/// As [`unpeer`], with the provider id given explicitly (for `--force` without a reachable
/// provider).
pub(crate) async fn unpeer_ids(
    progress: &Progress,
    consumer: &Conn,
    provider: Option<&Conn>,
    p: &liqo_core::ids::ClusterId,
    opts: &UnpeerOptions,
) -> anyhow::Result<()> {
    let c = &consumer.id;
    let c_ns = p.tenant_namespace();
    let p_ns = c.tenant_namespace();
    let t = opts.timeout;
    let cl = consumer.client.clone();
    if !is_peer(consumer, p).await? && !is_peer_provider(provider, c).await? {
        anyhow::bail!(
            "cluster {p} is not a peer of {c}: there is nothing to unpeer (no ForeignCluster {p} \
             and no tenant namespace {c_ns} on {c}); `kubectl get foreignclusters` lists the peers"
        );
    }
    let force = opts.force || provider.is_none();
    let local_sel = ListParams::default().labels(&format!(
        "{}={},{}={p}",
        repl_keys::REPLICATION,
        labels::TRUE,
        repl_keys::REMOTE_ID
    ));
    let hint = format!(
        "the replicator of {c} could not remove their replicas on {p}; if {p} is gone for good, \
         run `liqoctl unpeer --force`"
    );

    progress
        .step(format!("offloading towards {p} removed on {c}"), async {
            delete_all(
                &Api::<ResourceSlice>::namespaced(cl.clone(), &c_ns),
                &local_sel,
                force,
                t,
                &hint,
            )
            .await?;
            delete_all(
                &Api::<VirtualNode>::namespaced(cl.clone(), &c_ns),
                &ListParams::default(),
                force,
                t,
                "",
            )
            .await?;
            delete_all(
                &Api::<NamespaceMap>::namespaced(cl.clone(), &c_ns),
                &local_sel,
                force,
                t,
                &hint,
            )
            .await?;
            delete_all(
                &Api::<Renew>::namespaced(cl.clone(), &c_ns),
                &local_sel,
                force,
                t,
                &hint,
            )
            .await?;
            Ok(())
        })
        .await?;

    progress
        .step(format!("identities of {p} removed on {c}"), async {
            delete_all(
                &Api::<Identity>::namespaced(cl.clone(), &c_ns),
                &ListParams::default(),
                force,
                t,
                "",
            )
            .await?;
            let secrets = Api::<Secret>::namespaced(cl.clone(), &c_ns);
            delete_all(
                &secrets,
                &ListParams::default().labels(auth_keys::IDENTITY_TYPE),
                force,
                t,
                "",
            )
            .await?;
            delete_one(&secrets, names::SIGNED_NONCE_SECRET).await?;
            Ok(())
        })
        .await?;

    if let Some(provider) = provider.filter(|_| !opts.force) {
        let pl = provider.client.clone();
        progress
            .step(format!("tenant {c} removed on {p}"), async {
                let replica_sel = ListParams::default().labels(&format!(
                    "{}={},{}={c}",
                    repl_keys::REPLICATED,
                    labels::TRUE,
                    repl_keys::ORIGIN_ID
                ));
                delete_all(&Api::<ResourceSlice>::namespaced(pl.clone(), &p_ns), &replica_sel, false, t, "").await?;
                delete_all(&Api::<NamespaceMap>::namespaced(pl.clone(), &p_ns), &replica_sel, false, t, "").await?;
                delete_all(&Api::<Renew>::namespaced(pl.clone(), &p_ns), &replica_sel, false, t, "").await?;
                delete_all(&Api::<Quota>::namespaced(pl.clone(), &p_ns), &ListParams::default(), false, t, "").await?;
                let tenants = Api::<Tenant>::namespaced(pl.clone(), &p_ns);
                delete_one(&tenants, c.as_str()).await?;
                wait_for(
                    t,
                    || format!("Tenant {p_ns}/{c} on {p} is not deleted: is liqo-controller-manager running on {p} (it removes the finalizer)?"),
                    || async { Ok(tenants.get_opt(c.as_str()).await.ok().flatten().is_none().then_some(())) },
                )
                .await?;
                delete_one(&Api::<Secret>::namespaced(pl.clone(), &p_ns), names::NONCE_SECRET).await?;
                Ok(())
            })
            .await?;
    }

    // The reverse peering (the provider consuming from the consumer) shares the tenant
    // namespaces and the network: keep them.
    let reverse = Api::<Tenant>::namespaced(cl.clone(), &c_ns)
        .get_opt(p.as_str())
        .await
        .ok()
        .flatten()
        .is_some();
    if reverse {
        progress.info(format!(
            "{p} still consumes resources of {c} (reverse peering): keeping the network and the tenant namespaces"
        ));
        return Ok(());
    }

    progress
        .step("networking removed", async {
            let mut sides = vec![(cl.clone(), c_ns.clone(), p.clone())];
            if let Some(provider) = provider.filter(|_| !opts.force) {
                sides.push((provider.client.clone(), p_ns.clone(), c.clone()));
            }
            for (client, ns, peer) in sides {
                delete_one(
                    &Api::<GatewayClient>::namespaced(client.clone(), &ns),
                    peer.as_str(),
                )
                .await?;
                delete_one(
                    &Api::<GatewayServer>::namespaced(client.clone(), &ns),
                    peer.as_str(),
                )
                .await?;
                delete_one(
                    &Api::<PublicKey>::namespaced(client.clone(), &ns),
                    peer.as_str(),
                )
                .await?;
                delete_one(
                    &Api::<Configuration>::namespaced(client.clone(), &ns),
                    peer.as_str(),
                )
                .await?;
            }
            Ok(())
        })
        .await?;

    progress
        .step("ForeignClusters removed", async {
            let mut sides = vec![(cl.clone(), p.clone())];
            if let Some(provider) = provider.filter(|_| !opts.force) {
                sides.push((provider.client.clone(), c.clone()));
            }
            for (client, peer) in sides {
                let api = Api::<ForeignCluster>::all(client);
                api.delete(peer.as_str(), &DeleteParams::background())
                    .await
                    .map(|_| ())
                    .or_else(tolerate)?;
            }
            Ok(())
        })
        .await?;

    if opts.keep_namespaces {
        progress.info(format!(
            "tenant namespaces kept ({c_ns} on {c}, {p_ns} on {p})"
        ));
        return Ok(());
    }
    progress
        .step("tenant namespaces deleted", async {
            let mut sides = vec![(cl.clone(), c_ns.clone())];
            if let Some(provider) = provider.filter(|_| !opts.force) {
                sides.push((provider.client.clone(), p_ns.clone()));
            }
            let mut deleting = Vec::new();
            for (client, ns) in &sides {
                match Api::<Namespace>::all(client.clone())
                    .delete(ns, &DeleteParams::background())
                    .await
                {
                    Ok(_) => deleting.push((client.clone(), ns.clone())),
                    Err(kube::Error::Api(s)) if s.code == 403 => progress.info(format!(
                        "not allowed to delete namespace {ns} (least-privilege user): kept"
                    )),
                    Err(e) => tolerate(e)?,
                }
            }
            for (client, ns) in &deleting {
                let api = Api::<Namespace>::all(client.clone());
                wait_for(
                    t,
                    || format!("namespace {ns} is still terminating"),
                    || async { Ok(api.get_opt(ns).await.ok().flatten().is_none().then_some(())) },
                )
                .await
                .context("deleting the tenant namespaces")?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}
