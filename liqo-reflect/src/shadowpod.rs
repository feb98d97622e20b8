//! The ShadowPod controller, provider side: every ShadowPod a consumer writes gets a real Pod.
//!
//! For each ShadowPod the controller keeps a Pod with the same name and namespace, controlled
//! by the ShadowPod (owner reference), with the
//! ShadowPod's labels (plus `liqo.io/managed-by=shadowpod`) and annotations and its
//! `spec.pod`. A Pod deleted behind its back is created again, also while the consumer is
//! unreachable: the provider keeps the workload running on its own. The Pod's `status.phase`
//! is mirrored into the ShadowPod's status. The spec is only used at creation, as upstream.
//! When the ShadowPod is deleted the controller deletes its Pod itself: the garbage collector
//! would too, but only once its discovery knows the ShadowPod kind, which takes up to half a
//! minute after the CRD is installed.
//!
//! Host it in the provider's controller manager with [`run`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::watcher,
};
use liqo_core::{
    api::offloading::v1beta1::{PodPhase, ShadowPod, ShadowPodStatus},
    labels::offloading::{MANAGED_BY, MANAGED_BY_SHADOW_POD},
};
use tracing::info;

use crate::{
    Error, Result,
    materialize::{self, Materializer, Watches},
    worker::Outcome,
};

/// Default concurrent reconciles. Upstream uses 10; a reconcile here is one request, and under
/// a burst of ShadowPods 10 in flight made the controller the slowest stage of offloading
/// (docs/performance.md).
pub const DEFAULT_WORKERS: u16 = 50;

/// Settings of the ShadowPod controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Only ShadowPods of this namespace (default: all namespaces).
    pub namespace: Option<String>,
    /// Concurrent reconciles.
    pub workers: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            workers: DEFAULT_WORKERS,
        }
    }
}

/// What the controller decides for one ShadowPod, given the Pod with its name (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Create this Pod.
    Create(Box<Pod>),
    /// The Pod exists: write this status into the ShadowPod if different.
    Mirror(ShadowPodStatus),
    /// The Pod is being deleted: check again later.
    Wait,
    /// A Pod with the name exists and is not controlled by the ShadowPod.
    Conflict,
    /// The ShadowPod asks for what no tenant may run (see
    /// [`pod_policy`](crate::offloading::pod_policy)): no Pod is created, whoever wrote it.
    Refuse(String),
    /// Nothing to do (the ShadowPod is being deleted, or has no pod spec).
    Nothing,
}

/// Parses a Pod phase.
pub fn pod_phase(phase: Option<&str>) -> PodPhase {
    match phase {
        Some("Pending") => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        _ => PodPhase::Unknown,
    }
}

/// The Pod for `shadow`: same name and namespace, its labels plus `liqo.io/managed-by`, its
/// annotations, owned (as controller) by it, with its `spec.pod`. `None` when the ShadowPod
/// has no pod spec.
pub fn forge_pod(shadow: &ShadowPod) -> Option<Pod> {
    let spec = shadow.spec.pod.clone()?;
    let mut labels: BTreeMap<String, String> = shadow.labels().clone();
    labels.insert(MANAGED_BY.to_owned(), MANAGED_BY_SHADOW_POD.to_owned());
    let mut annotations = shadow.annotations().clone();
    annotations.remove(crate::CONTENT_HASH_ANNOTATION);
    Some(Pod {
        metadata: ObjectMeta {
            name: shadow.metadata.name.clone(),
            namespace: shadow.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: shadow.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Decides what to do for `shadow` given the Pod with its name, if any.
pub fn plan(shadow: &ShadowPod, pod: Option<&Pod>) -> Plan {
    if shadow.metadata.deletion_timestamp.is_some() {
        return Plan::Nothing;
    }
    let Some(pod) = pod else {
        // Checked as if the tenant created the Pod itself: the rules Pod Security admission
        // does not cover (it checks the rest on the Pod, at the twin namespace's level).
        if let Some(spec) = shadow.spec.pod.as_ref() {
            let found = crate::offloading::pod_policy::violations(
                spec,
                crate::offloading::pod_policy::Level::Privileged,
            );
            if !found.is_empty() {
                return Plan::Refuse(found.join("; "));
            }
        }
        return forge_pod(shadow).map_or(Plan::Nothing, |p| Plan::Create(Box::new(p)));
    };
    let controlled = pod
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == shadow.metadata.uid.as_ref());
    if !controlled {
        return Plan::Conflict;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Plan::Wait;
    }
    Plan::Mirror(ShadowPodStatus {
        phase: pod_phase(pod.status.as_ref().and_then(|s| s.phase.as_deref())),
    })
}

/// The ShadowPod materializer: creates missing Pods and mirrors their phase.
#[derive(Default)]
struct Shadows {
    /// The phase last written per key, with the uid of the ShadowPod it was written to: the
    /// cache may not show that write yet, and writing it again would cost the API server a
    /// CRD validation for nothing. Forgotten when the ShadowPod leaves the cache.
    written: Mutex<HashMap<String, (String, PodPhase)>>,
}

impl Shadows {
    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, PodPhase)>> {
        // Single inserts and removes: a poisoned map is still consistent.
        match self.written.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[async_trait]
impl Materializer for Shadows {
    type Shadow = ShadowPod;
    type Made = Pod;
    const KIND: &'static str = "ShadowPod";

    async fn reconcile(
        &self,
        client: &Client,
        key: &str,
        shadow: Arc<ShadowPod>,
        pod: Option<Arc<Pod>>,
    ) -> Result<Outcome> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let uid = shadow.metadata.uid.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        match plan(&shadow, pod.as_deref()) {
            Plan::Create(pod) => match pods.create(&PostParams::default(), &pod).await {
                Ok(_) => {
                    info!(pod = %name, %namespace, "pod created for ShadowPod");
                    Ok(Outcome::Written)
                }
                // Created a moment ago, not in the cache yet.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Outcome::Unchanged),
                Err(e) => Err(Error::kube(format!("creating pod {namespace}/{name}"))(e)),
            },
            Plan::Mirror(status) => {
                let current = shadow.status.as_ref().map(|s| s.phase);
                let written = self
                    .written()
                    .get(key)
                    .filter(|(written_uid, _)| *written_uid == uid)
                    .map(|(_, phase)| *phase);
                if current == Some(status.phase) || written == Some(status.phase) {
                    return Ok(Outcome::Unchanged);
                }
                Api::<ShadowPod>::namespaced(client.clone(), namespace)
                    .patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(&serde_json::json!({ "status": status })),
                    )
                    .await
                    .map_err(Error::kube(format!(
                        "writing the status of ShadowPod {namespace}/{name}"
                    )))?;
                self.written().insert(key.to_owned(), (uid, status.phase));
                Ok(Outcome::Written)
            }
            Plan::Refuse(why) => Err(Error::Refused(format!(
                "ShadowPod {namespace}/{name}: {why}"
            ))),
            Plan::Conflict => Err(Error::NotManaged {
                kind: "Pod".to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }),
            // The Pod is going away: its deletion queues the key again.
            Plan::Wait | Plan::Nothing => Ok(Outcome::Unchanged),
        }
    }

    fn forget(&self, key: &str) {
        self.written().remove(key);
    }
}

/// Runs the ShadowPod controller until `shutdown` resolves.
///
/// It reads ShadowPods and their Pods from watch caches (no request per reconcile) and
/// writes only what changed: on a provider that hosts thousands of offloaded pods, every
/// request saved is API-server CPU left to the workloads.
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_reflect::Result<()> {
/// use liqo_reflect::shadowpod;
///
/// shadowpod::run(client, shadowpod::Config::default(), liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let (shadows, pods): (Api<ShadowPod>, Api<Pod>) = match &config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let watches = Watches {
        shadows,
        made: pods,
        made_config: watcher::Config::default()
            .labels(&format!("{MANAGED_BY}={MANAGED_BY_SHADOW_POD}")),
        // The plan reads the Pods' metadata and phase only.
        slim: |pod: &mut Pod| pod.spec = None,
    };
    materialize::run(
        Shadows::default(),
        client,
        watches,
        config.workers,
        shutdown,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_core::api::offloading::v1beta1::ShadowPodSpec;
    use serde_json::json;

    fn shadow() -> ShadowPod {
        let mut s = ShadowPod::new(
            "web-1",
            ShadowPodSpec {
                pod: Some(
                    serde_json::from_value(
                        json!({"containers": [{"name": "web", "image": "nginx"}]}),
                    )
                    .unwrap(),
                ),
            },
        );
        s.metadata.namespace = Some("demo-rome".into());
        s.metadata.uid = Some("shadow-uid".into());
        s.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
        s.metadata.annotations = Some(
            [
                ("team".to_owned(), "a".to_owned()),
                (crate::CONTENT_HASH_ANNOTATION.to_owned(), "x".to_owned()),
            ]
            .into(),
        );
        s
    }

    #[test]
    fn creates_an_owned_pod_with_the_metadata() {
        let Plan::Create(pod) = plan(&shadow(), None) else {
            panic!("expected a creation");
        };
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("demo-rome"));
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["liqo.io/managed-by"], "shadowpod");
        assert_eq!(pod.metadata.annotations.clone().unwrap().len(), 1);
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ShadowPod", "shadow-uid")
        );
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn refuses_pods_no_tenant_may_run_whoever_wrote_the_shadow() {
        let mut pinned = shadow();
        if let Some(spec) = pinned.spec.pod.as_mut() {
            spec.node_name = Some("control-plane".into());
            spec.priority_class_name = Some("system-cluster-critical".into());
        }
        let Plan::Refuse(why) = plan(&pinned, None) else {
            panic!("expected a refusal");
        };
        assert!(
            why.contains("nodeName") && why.contains("system-cluster-critical"),
            "{why}"
        );
    }

    #[test]
    fn mirrors_the_phase_of_its_pod_only() {
        let Plan::Create(mut pod) = plan(&shadow(), None) else {
            panic!("expected a creation");
        };
        pod.status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());
        assert_eq!(
            plan(&shadow(), Some(&pod)),
            Plan::Mirror(ShadowPodStatus {
                phase: PodPhase::Running
            })
        );
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(plan(&shadow(), Some(&pod)), Plan::Wait);
        pod.metadata.owner_references = None;
        assert_eq!(plan(&shadow(), Some(&pod)), Plan::Conflict);
        let mut deleting = shadow();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(plan(&deleting, None), Plan::Nothing);
    }
}
