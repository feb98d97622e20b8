//! The CRD replicator (consumer side): for every provider with a control-plane identity
//! (Secret `kubeconfig-controlplane-<P>`), copies the local ResourceSlices, NamespaceMaps and
//! Renews labelled `liqo.io/replication=true`, `liqo.io/remoteID=<P>` into the consumer's tenant
//! namespace on P (labels `liqo.io/replicated=true`, `liqo.io/originID=<C>`), using only the
//! least-privilege control-plane identity, and copies their status back. A finalizer on the
//! original deletes the replica first.
//!
//! [`replica_labels`] is the pure part:
//!
//! ```
//! use std::collections::BTreeMap;
//! use liqo_auth::controller::replicator::replica_labels;
//! use liqo_core::ids::ClusterId;
//!
//! let rome = ClusterId::new("rome")?;
//! let milan = ClusterId::new("milan")?;
//! let local = liqo_core::labels::replication_labels(&milan);
//! let replica = replica_labels(&local, &rome);
//! assert_eq!(replica["liqo.io/replicated"], "true");
//! assert_eq!(replica["liqo.io/originID"], "rome");
//! assert!(!replica.contains_key("liqo.io/replication"));
//! # Ok::<(), liqo_core::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{Renew, ResourceSlice};
use liqo_core::api::offloading::v1beta1::NamespaceMap;
use liqo_core::ids::ClusterId;
use liqo_core::labels::{
    self, authentication as auth_keys, core as core_keys, replication as repl_keys,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use super::{Context, ShutdownFuture, drain, is_404};
use crate::error::{Error, Result};
use crate::{kubeconfig, names};

/// Labels of the replica of an object with `local` labels, made by cluster `origin`.
pub fn replica_labels(
    local: &BTreeMap<String, String>,
    origin: &ClusterId,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = local
        .iter()
        .filter(|(k, _)| k.as_str() != repl_keys::REPLICATION && k.as_str() != repl_keys::REMOTE_ID)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(repl_keys::REPLICATED.to_owned(), labels::TRUE.to_owned());
    out.insert(repl_keys::ORIGIN_ID.to_owned(), origin.to_string());
    out.insert(core_keys::REMOTE_CLUSTER_ID.to_owned(), origin.to_string());
    out
}

type Tasks = Arc<Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>>;

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let tasks: Tasks = Arc::default();
    let secrets = Api::<Secret>::all(ctx.client.clone());
    let selector = format!(
        "{}={}",
        auth_keys::IDENTITY_TYPE,
        auth_keys::IDENTITY_TYPE_CONTROL_PLANE
    );
    let t = tasks.clone();
    let sd = shutdown.clone();
    drain(
        Controller::new(secrets, watcher::Config::default().labels(&selector))
            .graceful_shutdown_on(shutdown)
            .run(
                move |secret: Arc<Secret>, ctx: Arc<Context>| {
                    let tasks = t.clone();
                    let sd = sd.clone();
                    async move { reconcile_secret(secret, ctx, tasks, sd).await }
                },
                |obj: Arc<Secret>, e: &Error, ctx: Arc<Context>| ctx.error_policy(obj.as_ref(), e),
                ctx,
            ),
    )
    .await;
    let tasks = std::mem::take(&mut *tasks.lock().unwrap_or_else(|p| p.into_inner()));
    for (_, (_, handle)) in tasks {
        handle.abort();
    }
}

async fn reconcile_secret(
    secret: Arc<Secret>,
    ctx: Arc<Context>,
    tasks: Tasks,
    shutdown: ShutdownFuture,
) -> Result<Action> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(peer) = labels::remote_cluster_id_from(secret.labels())
        .ok()
        .flatten()
    else {
        return Ok(Action::await_change());
    };
    let Some(remote_ns) = secret
        .annotations()
        .get(auth_keys::REMOTE_TENANT_NAMESPACE)
        .cloned()
    else {
        return Ok(Action::await_change());
    };
    let Some(yaml) = secret
        .data
        .as_ref()
        .and_then(|d| d.get(names::KUBECONFIG_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
    else {
        return Ok(Action::await_change());
    };
    let fingerprint = names::kubernetes_csr_name(&remote_ns, yaml.as_bytes());
    {
        let guard = tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((fp, handle)) = guard.get(peer.as_str())
            && *fp == fingerprint
            && !handle.is_finished()
        {
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    }
    let remote = kubeconfig::client_from_yaml(&yaml).await?;
    let peer_ctx = Arc::new(PeerContext {
        local: ctx.client.clone(),
        remote,
        local_ns: secret.namespace().unwrap_or_default(),
        remote_ns,
        local_id: ctx.config.cluster_id.clone(),
        peer: peer.clone(),
        secret_name: secret.name_any(),
    });
    info!(%peer, "starting the replication of peering resources");
    let handle = tokio::spawn(replicate_peer(peer_ctx, shutdown)).abort_handle();
    if let Some((_, old)) = tasks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer.to_string(), (fingerprint, handle))
    {
        old.abort();
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

struct PeerContext {
    local: Client,
    remote: Client,
    local_ns: String,
    remote_ns: String,
    local_id: ClusterId,
    peer: ClusterId,
    secret_name: String,
}

async fn replicate_peer(p: Arc<PeerContext>, shutdown: ShutdownFuture) {
    let p2 = p.clone();
    // Stop when the identity goes away (unpeer).
    let watchdog = async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            match Api::<Secret>::namespaced(p2.local.clone(), &p2.local_ns)
                .get_opt(&p2.secret_name)
                .await
            {
                Ok(None) => return,
                Ok(Some(s)) if s.metadata.deletion_timestamp.is_some() => return,
                _ => {}
            }
        }
    };
    let replication = async {
        futures::join!(
            kind::<ResourceSlice>(p.clone(), shutdown.clone()),
            kind::<NamespaceMap>(p.clone(), shutdown.clone()),
            kind::<Renew>(p.clone(), shutdown.clone()),
        );
    };
    tokio::select! {
        () = watchdog => info!(peer = %p.peer, "control-plane identity gone: replication stopped"),
        () = replication => {},
    }
}

async fn kind<K>(p: Arc<PeerContext>, shutdown: ShutdownFuture)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let local = Api::<K>::namespaced(p.local.clone(), &p.local_ns);
    let remote = Api::<K>::namespaced(p.remote.clone(), &p.remote_ns);
    let selector = format!(
        "{}={},{}={}",
        repl_keys::REPLICATION,
        labels::TRUE,
        repl_keys::REMOTE_ID,
        p.peer
    );
    let remote_selector = format!(
        "{}={},{}={}",
        repl_keys::REPLICATED,
        labels::TRUE,
        repl_keys::ORIGIN_ID,
        p.local_id
    );
    let local_ns = p.local_ns.clone();
    drain(
        Controller::new(local, watcher::Config::default().labels(&selector))
            .watches(
                remote,
                watcher::Config::default().labels(&remote_selector),
                move |obj: K| Some(ObjectRef::new(&obj.name_any()).within(&local_ns)),
            )
            .graceful_shutdown_on(shutdown)
            .run(
                replicate::<K>,
                |_obj: Arc<K>, e: &Error, _p: Arc<PeerContext>| {
                    warn!(error = %e, "replication failed");
                    Action::requeue(Duration::from_secs(2))
                },
                p,
            ),
    )
    .await;
}

async fn replicate<K>(obj: Arc<K>, p: Arc<PeerContext>) -> Result<Action>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let kind = K::kind(&());
    let name = obj.name_any();
    let local = Api::<K>::namespaced(p.local.clone(), &p.local_ns);
    let remote = Api::<K>::namespaced(p.remote.clone(), &p.remote_ns);
    let what = format!("{kind} {}/{name}", p.remote_ns);

    if obj.meta().deletion_timestamp.is_some() {
        match remote.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_404(&e) => {}
            Err(e) => return Err(Error::kube(format!("deleting replica {what}"))(e)),
        }
        let gone = remote
            .get_opt(&name)
            .await
            .map_err(Error::kube(format!("reading replica {what}")))?
            .is_none();
        if !gone {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let rest: Vec<&String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != repl_keys::RESOURCE_FINALIZER)
            .collect();
        if rest.len() != obj.finalizers().len() {
            let patch = serde_json::json!({"metadata": {
                "finalizers": rest, "resourceVersion": obj.resource_version(),
            }});
            local
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube(format!(
                    "removing the finalizer of {kind} {name}"
                )))?;
        }
        return Ok(Action::await_change());
    }
    if !obj
        .finalizers()
        .iter()
        .any(|f| f == repl_keys::RESOURCE_FINALIZER)
    {
        let mut f = obj.finalizers().to_vec();
        f.push(repl_keys::RESOURCE_FINALIZER.to_owned());
        let patch = serde_json::json!({"metadata": {
            "finalizers": f, "resourceVersion": obj.resource_version(),
        }});
        local
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "adding the finalizer of {kind} {name}"
            )))?;
        return Ok(Action::await_change());
    }

    // Spec (and labels/annotations) to the replica.
    let value = serde_json::to_value(obj.as_ref()).map_err(|e| Error::Backend(Box::new(e)))?;
    let annotations: BTreeMap<String, String> = obj
        .annotations()
        .iter()
        .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // No empty maps: the API server stores an empty `annotations: {}` as absent, so applying
    // it again would be a change every time, and the replica's watch event would trigger this
    // reconcile again: a write loop (about 33 writes a second per peering).
    let mut metadata = serde_json::json!({
        "name": name,
        "namespace": p.remote_ns,
        "labels": replica_labels(obj.labels(), &p.local_id),
    });
    if !annotations.is_empty() {
        metadata["annotations"] = serde_json::json!(annotations);
    }
    let replica = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "metadata": metadata,
        // An empty spec (e.g. a NamespaceMap without mappings) must stay an object: the
        // CRD schema refuses null.
        "spec": value
            .get("spec")
            .filter(|s| !s.is_null())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    });
    let applied = remote
        .patch(
            &name,
            &PatchParams::apply(names::REPLICATOR_FIELD_MANAGER).force(),
            &Patch::Apply(&replica),
        )
        .await
        .map_err(Error::kube(format!("applying replica {what}")))?;

    // Status back.
    let remote_status = serde_json::to_value(&applied)
        .ok()
        .and_then(|v| v.get("status").cloned())
        .filter(|s| !s.is_null());
    let local_status = value.get("status").cloned().filter(|s| !s.is_null());
    if let Some(status) = remote_status
        && Some(&status) != local_status.as_ref()
    {
        // A merge patch that also removes what the remote status no longer has (a mapping
        // dropped by the provider must disappear here too).
        let patch = serde_json::json!({
            "status": merge_diff(local_status.as_ref().unwrap_or(&serde_json::Value::Null), &status)
        });
        local
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!("copying back the status of {what}")))?;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// The JSON merge patch (RFC 7396) that turns `from` into `to`: keys missing in `to` are set
/// to null, nested objects are diffed, anything else is replaced.
fn merge_diff(from: &serde_json::Value, to: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (from, to) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in new {
                match old.get(k) {
                    Some(o) if o == v => {}
                    Some(o) => {
                        patch.insert(k.clone(), merge_diff(o, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in old.keys() {
                if !new.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

#[cfg(test)]
mod merge_tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn removed_keys_become_null() {
        let from = serde_json::json!({"currentMapping": {"a": {"phase": "Accepted"}, "b": {"phase": "Accepted"}}});
        let to = serde_json::json!({"currentMapping": {"a": {"phase": "Accepted"}}});
        assert_eq!(
            super::merge_diff(&from, &to),
            serde_json::json!({"currentMapping": {"b": null}})
        );
        let to = serde_json::json!({});
        assert_eq!(
            super::merge_diff(&from, &to),
            serde_json::json!({"currentMapping": null})
        );
    }
}
