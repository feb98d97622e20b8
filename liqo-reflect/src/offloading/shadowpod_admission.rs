//! The provider's ShadowPod webhooks: `/mutate/shadowpods` stamps the creating user
//! (`liqo.io/creator-user`, kept on updates), `/validate/shadowpods` refuses what the tenant
//! may not run ([`pod_policy::violations`] at the twin namespace's Pod Security level) and what
//! goes over the resources its ResourceSlice was granted (its `Quota`, found by user).
//!
//! The ShadowPods, Quotas and Namespaces are read from watch caches (an admission costs no API
//! call). Admissions of one user are serialized and remember what they admitted until the
//! cache shows it, so that a burst of concurrent creations cannot slip past the quota.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};
use liqo_core::api::offloading::v1beta1::{LimitsEnforcement, Quota, ShadowPod};
use liqo_core::labels::{self, authentication as auth_keys};
use liqo_core::quantity::Milli;
use liqo_core::webhook::{AdmissionRequest, AdmissionResponse};

use super::pod_policy::{self, Level};
use crate::worker::watch;

/// How long an admitted ShadowPod is counted from memory before the API server must show it.
const PENDING_TTL: Duration = Duration::from_secs(30);

/// The label value recording `user` (the user itself when it is a valid label value, else a
/// stable hash of it).
///
/// ```
/// use liqo_reflect::offloading::shadowpod_admission::creator_label_value;
///
/// assert_eq!(creator_label_value("milan-0a1b2c3d4e5f"), "milan-0a1b2c3d4e5f");
/// let odd = creator_label_value("system:serviceaccount:liqo:liqo-controller-manager");
/// assert!(odd.starts_with("user-") && odd.len() == 21);
/// ```
#[must_use]
pub fn creator_label_value(user: &str) -> String {
    let valid = !user.is_empty()
        && user.len() <= 63
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && user.starts_with(|c: char| c.is_ascii_alphanumeric())
        && user.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        user.to_owned()
    } else {
        format!(
            "user-{:016x}",
            crate::serviceaccount::fnv1a(user.as_bytes())
        )
    }
}

/// The JSON Patch that stamps the creator: the requester on CREATE, the value already there on
/// UPDATE (an update by someone else, or an apply that drops the label, does not move the pod
/// to another user's account).
#[must_use]
pub fn creator_patch(request: &AdmissionRequest) -> Vec<serde_json::Value> {
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| o.pointer("/metadata/labels"))
        .and_then(|l| l.get(auth_keys::CREATOR_USER))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let value = match (request.operation.as_str(), old) {
        ("UPDATE", Some(old)) => old,
        _ => creator_label_value(&request.user_info.username),
    };
    let labels = request
        .object
        .as_ref()
        .and_then(|o| o.pointer("/metadata/labels"));
    let current = labels
        .and_then(|l| l.get(auth_keys::CREATOR_USER))
        .and_then(|v| v.as_str());
    if current == Some(value.as_str()) {
        return Vec::new();
    }
    if labels.is_some_and(serde_json::Value::is_object) {
        let key = auth_keys::CREATOR_USER
            .replace('~', "~0")
            .replace('/', "~1");
        vec![
            serde_json::json!({"op": "add", "path": format!("/metadata/labels/{key}"), "value": value}),
        ]
    } else {
        vec![serde_json::json!({
            "op": "add", "path": "/metadata/labels",
            "value": {auth_keys::CREATOR_USER: value},
        })]
    }
}

type Pending = HashMap<String, (Instant, BTreeMap<String, Milli>)>;

/// How long an admission waits for the caches to be filled after a start.
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// The state of the ShadowPod validation: caches of the ShadowPods, Quotas and Namespaces
/// (watched, so an admission costs no API call), per-user locks, and what each user was
/// admitted recently that the cache may not show yet.
pub(crate) struct ShadowPodAdmission {
    client: Client,
    users: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Pending>>>>,
    shadows: reflector::Store<ShadowPod>,
    quotas: reflector::Store<Quota>,
    namespaces: reflector::Store<Namespace>,
}

impl ShadowPodAdmission {
    /// The admission and the watches that fill its caches (run them as long as it serves).
    pub(crate) fn start(client: Client) -> (Self, impl std::future::Future<Output = ()>) {
        let (shadows, shadows_writer) = reflector::store();
        let (quotas, quotas_writer) = reflector::store();
        let (namespaces, namespaces_writer) = reflector::store();
        let watches = {
            let client = client.clone();
            async move {
                tokio::join!(
                    watch(
                        Api::<ShadowPod>::all(client.clone()),
                        watcher::Config::default(),
                        shadows_writer,
                        |_| {}
                    ),
                    watch(
                        Api::<Quota>::all(client.clone()),
                        watcher::Config::default(),
                        quotas_writer,
                        |_| {}
                    ),
                    watch(
                        Api::<Namespace>::all(client),
                        watcher::Config::default(),
                        namespaces_writer,
                        |_| {}
                    ),
                );
            }
        };
        (
            Self {
                client,
                users: Mutex::default(),
                shadows,
                quotas,
                namespaces,
            },
            watches,
        )
    }

    fn user(&self, user: &str) -> Arc<tokio::sync::Mutex<Pending>> {
        let mut users = match self.users.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        users.entry(user.to_owned()).or_default().clone()
    }

    async fn caches_ready(&self) -> bool {
        tokio::time::timeout(CACHE_WAIT, async {
            let _ = tokio::join!(
                self.shadows.wait_until_ready(),
                self.quotas.wait_until_ready(),
                self.namespaces.wait_until_ready(),
            );
        })
        .await
        .is_ok()
    }

    /// The namespace `name`, from the cache or (just created) from the API server.
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>, kube::Error> {
        if let Some(ns) = self.namespaces.get(&ObjectRef::new(name)) {
            return Ok(Some(ns.as_ref().clone()));
        }
        Api::<Namespace>::all(self.client.clone())
            .get_opt(name)
            .await
    }

    /// The validation of one request.
    pub(crate) async fn validate(&self, request: AdmissionRequest) -> AdmissionResponse {
        let parse = |v: &Option<serde_json::Value>| {
            v.clone()
                .filter(|v| !v.is_null())
                .map(serde_json::from_value::<ShadowPod>)
                .transpose()
        };
        let (shadow, old) = match (parse(&request.object), parse(&request.old_object)) {
            (Ok(Some(new)), Ok(old)) => (new, old),
            (Ok(None), _) => return AdmissionResponse::allow(&request),
            (Err(e), _) | (_, Err(e)) => {
                return AdmissionResponse::deny(&request, format!("not a ShadowPod: {e}"));
            }
        };
        let Some(ns) = request.namespace.clone() else {
            return AdmissionResponse::allow(&request);
        };
        let Some(spec) = shadow.spec.pod.as_ref() else {
            return AdmissionResponse::allow(&request);
        };
        if !self.caches_ready().await {
            return AdmissionResponse::deny(
                &request,
                "the provider's ShadowPod webhook is starting (its caches are not filled yet); retry",
            );
        }
        let namespace = match self.namespace(&ns).await {
            Ok(Some(n)) => n,
            Ok(None) => {
                return AdmissionResponse::deny(&request, format!("namespace {ns} does not exist"));
            }
            Err(e) => {
                return AdmissionResponse::deny(
                    &request,
                    format!("cannot read namespace {ns} to check the ShadowPod ({e}); retry"),
                );
            }
        };
        let level = Level::of_namespace(namespace.labels());
        let found = pod_policy::violations(spec, level);
        if !found.is_empty() {
            return AdmissionResponse::deny(
                &request,
                format!(
                    "ShadowPod {ns}/{} refused: namespace {ns} enforces the {} Pod Security level \
                     of this provider: {}",
                    shadow.name_any(),
                    level.as_str(),
                    found.join("; ")
                ),
            );
        }

        // Quota: the user's, by name. A tenant (a user in the group of the cluster the twin
        // namespace belongs to) must have one.
        let user = request.user_info.username.clone();
        let origin = namespace.labels().get(labels::core::REMOTE_CLUSTER_ID);
        let tenant = origin.is_some_and(|o| request.user_info.groups.iter().any(|g| g == o));
        let Some(quota) = self
            .quotas
            .state()
            .into_iter()
            .find(|q| q.spec.user == user)
        else {
            if tenant {
                return AdmissionResponse::deny(
                    &request,
                    format!(
                        "user {user} has no Quota on this provider: its ResourceSlice was not \
                         accepted, or was removed (liqoctl info on the consumer shows the peering)"
                    ),
                );
            }
            return AdmissionResponse::allow(&request);
        };
        let enforcement = quota
            .spec
            .limits_enforcement
            .unwrap_or(LimitsEnforcement::None);
        let demand = match pod_policy::demand(spec, enforcement) {
            Ok(d) => d,
            Err(m) => return AdmissionResponse::deny(&request, m),
        };
        if let Some(old) = old.as_ref().and_then(|o| o.spec.pod.as_ref()) {
            // An update that does not ask for more is always fine (a smaller quota must not
            // block relabelling running pods).
            let before = pod_policy::demand(old, enforcement).unwrap_or_default();
            if demand
                .iter()
                .all(|(k, v)| before.get(k).is_some_and(|b| b >= v))
            {
                return AdmissionResponse::allow(&request);
            }
        }
        let key = format!("{ns}/{}", shadow.name_any());
        let lock = self.user(&user);
        let mut pending = lock.lock().await;
        let creator = creator_label_value(&user);
        let mut used = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for s in self.shadows.state() {
            if s.labels().get(auth_keys::CREATOR_USER) != Some(&creator) {
                continue;
            }
            let k = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
            seen.insert(k.clone());
            if k == key || s.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(p) = s.spec.pod.as_ref()
                && let Ok(d) = pod_policy::demand(p, enforcement)
            {
                pod_policy::add(&mut used, &d);
            }
        }
        let now = Instant::now();
        pending.retain(|k, (at, _)| !seen.contains(k) && now.duration_since(*at) < PENDING_TTL);
        for (k, (_, d)) in pending.iter() {
            if *k != key {
                pod_policy::add(&mut used, d);
            }
        }
        if let Err(m) = pod_policy::check_quota(&quota.spec, &used, &demand) {
            return AdmissionResponse::deny(&request, format!("ShadowPod {key} refused: {m}"));
        }
        if request.dry_run != Some(true) {
            pending.insert(key, (now, demand));
        }
        AdmissionResponse::allow(&request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use liqo_core::webhook::UserInfo;

    #[test]
    fn the_creator_is_stamped_once() {
        let req = |op: &str, labels: serde_json::Value, old: Option<serde_json::Value>| {
            AdmissionRequest {
                uid: "u".into(),
                operation: op.into(),
                object: Some(serde_json::json!({"metadata": {"name": "p", "labels": labels}})),
                old_object: old,
                user_info: UserInfo {
                    username: "milan-0a1b2c".into(),
                    groups: vec![],
                },
                ..AdmissionRequest::default()
            }
        };
        let p = creator_patch(&req("CREATE", serde_json::json!({"app": "x"}), None));
        assert_eq!(p[0]["path"], "/metadata/labels/liqo.io~1creator-user");
        assert_eq!(p[0]["value"], "milan-0a1b2c");
        // A forged label is overwritten on create.
        let p = creator_patch(&req(
            "CREATE",
            serde_json::json!({"liqo.io/creator-user": "someone-else"}),
            None,
        ));
        assert_eq!(p[0]["value"], "milan-0a1b2c");
        // An update keeps the original creator.
        let old = serde_json::json!({"metadata": {"labels": {"liqo.io/creator-user": "rome-1"}}});
        let p = creator_patch(&req("UPDATE", serde_json::json!({}), Some(old.clone())));
        assert_eq!(p[0]["value"], "rome-1");
        let p = creator_patch(&req(
            "UPDATE",
            serde_json::json!({"liqo.io/creator-user": "rome-1"}),
            Some(old),
        ));
        assert!(p.is_empty());
        // No labels at all.
        let mut r = req("CREATE", serde_json::json!(null), None);
        r.object = Some(serde_json::json!({"metadata": {"name": "p"}}));
        assert_eq!(creator_patch(&r)[0]["path"], "/metadata/labels");
    }
}
