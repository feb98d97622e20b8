//! What every cluster has before it can peer: the Liqo namespace, its cluster id in ConfigMap
//! `liqo/liqo-clusterid-configmap` (key `CLUSTER_ID`), its key pair in Secret
//! `liqo/authentication-keys`, and the ClusterRoles granted to peers.
//!
//! ```no_run
//! # async fn f(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use liqo_core::ids::ClusterId;
//!
//! let id = ClusterId::new("rome")?;
//! let keys = liqo_auth::bootstrap::ensure_cluster(&client, "liqo", &id, "0.1.0").await?;
//! assert_eq!(liqo_auth::bootstrap::read_cluster_id(&client, "liqo").await?, id);
//! # let _ = keys; Ok(()) }
//! ```

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use liqo_core::ids::ClusterId;
use liqo_core::labels::{core as core_keys, kubernetes as k8s_keys};

use crate::crypto::{AUTH_KEYS_SECRET_NAME, ClusterKeys, PRIVATE_KEY_FIELD, PUBLIC_KEY_FIELD};
use crate::error::{Error, Result};
use crate::{forge, names};

fn apply() -> PatchParams {
    PatchParams::apply(names::FIELD_MANAGER).force()
}

/// Ensures the namespace, cluster id ConfigMap, keys Secret and ClusterRoles; returns the keys.
///
/// # Errors
///
/// [`Error::Refused`] if the ConfigMap already records another cluster id (ids never change:
/// peers know the cluster by it); [`Error::Kube`] for API failures.
pub async fn ensure_cluster(
    client: &kube::Client,
    namespace: &str,
    cluster_id: &ClusterId,
    version: &str,
) -> Result<ClusterKeys> {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .patch(namespace, &apply(), &Patch::Apply(&ns))
        .await
        .map_err(Error::kube(format!("creating namespace {namespace}")))?;

    let cms = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    if let Some(existing) = cms
        .get_opt(names::CLUSTER_ID_CONFIGMAP)
        .await
        .map_err(Error::kube("reading the cluster id ConfigMap"))?
        && let Some(old) = existing
            .data
            .as_ref()
            .and_then(|d| d.get(core_keys::CLUSTER_ID_CONFIGMAP_KEY))
        && old != cluster_id.as_str()
    {
        return Err(Error::Refused(format!(
            "this cluster already has cluster id {old:?} (ConfigMap {namespace}/{}); a cluster id \
             never changes: start with --cluster-id {old}, or delete the ConfigMap after \
             unpeering every peer",
            names::CLUSTER_ID_CONFIGMAP
        )));
    }
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(names::CLUSTER_ID_CONFIGMAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                k8s_keys::APP_NAME.to_owned(),
                core_keys::CLUSTER_ID_CONFIGMAP_NAME_VALUE.to_owned(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                core_keys::CLUSTER_ID_CONFIGMAP_KEY.to_owned(),
                cluster_id.to_string(),
            ),
            (names::VERSION_CONFIGMAP_KEY.to_owned(), version.to_owned()),
        ])),
        ..Default::default()
    };
    cms.patch(names::CLUSTER_ID_CONFIGMAP, &apply(), &Patch::Apply(&cm))
        .await
        .map_err(Error::kube("writing the cluster id ConfigMap"))?;

    let keys = ensure_keys(client, namespace).await?;

    let roles = Api::<ClusterRole>::all(client.clone());
    let (peering_cr, peering_role) = forge::peering_user_roles();
    for cr in [forge::remote_controlplane_cluster_role(), peering_cr] {
        let name = cr.metadata.name.clone().unwrap_or_default();
        roles
            .patch(&name, &apply(), &Patch::Apply(&cr))
            .await
            .map_err(Error::kube(format!("applying ClusterRole {name}")))?;
    }
    Api::<Role>::namespaced(client.clone(), namespace)
        .patch(
            names::PEERING_USER_LIQO_ROLE,
            &apply(),
            &Patch::Apply(&peering_role),
        )
        .await
        .map_err(Error::kube("applying the peering-user Role"))?;
    crate::policy::ensure(client).await?;
    Ok(keys)
}

/// Records the cluster's own labels (`--cluster-labels`) in the cluster id ConfigMap, key
/// [`names::CLUSTER_LABELS_CONFIGMAP_KEY`] (`k=v,...`), where `liqoctl info` shows them; no
/// labels remove the key. Peers get them through ResourceSlices, not from here.
///
/// # Errors
///
/// [`Error::Kube`] for API failures.
pub async fn publish_cluster_labels(
    client: &kube::Client,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    let data = if labels.is_empty() {
        BTreeMap::new()
    } else {
        BTreeMap::from([(
            names::CLUSTER_LABELS_CONFIGMAP_KEY.to_owned(),
            crate::cluster_labels::format(labels),
        )])
    };
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(names::CLUSTER_ID_CONFIGMAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    // A field manager of its own: the key goes when no labels are applied, the id stays.
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            names::CLUSTER_ID_CONFIGMAP,
            &PatchParams::apply(names::CLUSTER_LABELS_FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(Error::kube(
            "writing the cluster labels into the cluster id ConfigMap",
        ))?;
    Ok(())
}

/// The labels [`publish_cluster_labels`] recorded (empty when there are none).
///
/// # Errors
///
/// [`Error::Kube`] for API failures, [`Error::InvalidClusterLabel`] for a value that does not
/// parse.
pub async fn read_cluster_labels(
    client: &kube::Client,
    namespace: &str,
) -> Result<BTreeMap<String, String>> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(names::CLUSTER_ID_CONFIGMAP)
        .await
        .map_err(Error::kube("reading the cluster id ConfigMap"))?;
    match cm
        .and_then(|c| c.data)
        .and_then(|d| d.get(names::CLUSTER_LABELS_CONFIGMAP_KEY).cloned())
    {
        Some(value) => crate::cluster_labels::parse(&value),
        None => Ok(BTreeMap::new()),
    }
}

/// Loads the keys from `<namespace>/authentication-keys`, generating them the first time.
///
/// # Errors
///
/// [`Error::Kube`], or a crypto error for a corrupted Secret.
pub async fn ensure_keys(client: &kube::Client, namespace: &str) -> Result<ClusterKeys> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    if let Some(keys) = read_keys_opt(client, namespace).await? {
        return Ok(keys);
    }
    let keys = ClusterKeys::generate()?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(AUTH_KEYS_SECRET_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                PRIVATE_KEY_FIELD.to_owned(),
                ByteString(keys.to_pkcs8_pem().into_bytes()),
            ),
            (
                PUBLIC_KEY_FIELD.to_owned(),
                ByteString(keys.public_key_pem().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(keys),
        // Another process won the race: use its keys.
        Err(kube::Error::Api(s)) if s.code == 409 => read_keys(client, namespace).await,
        Err(e) => Err(Error::kube("creating the authentication-keys Secret")(e)),
    }
}

async fn read_keys_opt(client: &kube::Client, namespace: &str) -> Result<Option<ClusterKeys>> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(AUTH_KEYS_SECRET_NAME)
        .await
        .map_err(Error::kube(format!(
            "reading Secret {namespace}/{AUTH_KEYS_SECRET_NAME}"
        )))?;
    let Some(secret) = secret else {
        return Ok(None);
    };
    let pem = secret
        .data
        .as_ref()
        .and_then(|d| d.get(PRIVATE_KEY_FIELD))
        .ok_or_else(|| Error::Incomplete {
            object: format!("Secret {namespace}/{AUTH_KEYS_SECRET_NAME}"),
            reason: format!("no {PRIVATE_KEY_FIELD}"),
        })?;
    Ok(Some(ClusterKeys::from_pkcs8_pem(&pem.0)?))
}

/// Reads the keys of the cluster.
///
/// # Errors
///
/// [`Error::Incomplete`] if they do not exist (is liqo-controller-manager running?).
pub async fn read_keys(client: &kube::Client, namespace: &str) -> Result<ClusterKeys> {
    read_keys_opt(client, namespace)
        .await?
        .ok_or_else(|| Error::Incomplete {
            object: format!("Secret {namespace}/{AUTH_KEYS_SECRET_NAME}"),
            reason: "not found: is liqo-controller-manager running on this cluster?".into(),
        })
}

/// Reads the cluster id from `<namespace>/liqo-clusterid-configmap`.
///
/// # Errors
///
/// [`Error::Incomplete`] if it does not exist (is liqo-controller-manager running?).
pub async fn read_cluster_id(client: &kube::Client, namespace: &str) -> Result<ClusterId> {
    let (id, _) = read_cluster_info(client, namespace).await?;
    Ok(id)
}

/// Reads the cluster id and the controller-manager version from the cluster-id ConfigMap.
///
/// # Errors
///
/// As [`read_cluster_id`].
pub async fn read_cluster_info(
    client: &kube::Client,
    namespace: &str,
) -> Result<(ClusterId, Option<String>)> {
    let object = format!("ConfigMap {namespace}/{}", names::CLUSTER_ID_CONFIGMAP);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(names::CLUSTER_ID_CONFIGMAP)
        .await
        .map_err(Error::kube(format!("reading {object}")))?
        .ok_or_else(|| Error::Incomplete {
            object: object.clone(),
            reason: "not found: is liqo-controller-manager running on this cluster?".into(),
        })?;
    let data = cm.data.unwrap_or_default();
    let id = data
        .get(core_keys::CLUSTER_ID_CONFIGMAP_KEY)
        .ok_or_else(|| Error::Incomplete {
            object: object.clone(),
            reason: format!("no {}", core_keys::CLUSTER_ID_CONFIGMAP_KEY),
        })?;
    let id = ClusterId::new(id.clone()).map_err(|e| Error::Incomplete {
        object,
        reason: e.to_string(),
    })?;
    Ok((id, data.get(names::VERSION_CONFIGMAP_KEY).cloned()))
}
