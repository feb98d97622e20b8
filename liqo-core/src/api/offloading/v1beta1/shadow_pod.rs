//! The `ShadowPod` kind: an offloaded pod, as written by the consumer in the provider.

use k8s_openapi::api::core::v1::PodSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pod to run in the provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "ShadowPod",
    plural = "shadowpods",
    shortname = "shp",
    shortname = "shpod",
    category = "liqo",
    namespaced,
    status = "ShadowPodStatus",
    derive = "PartialEq",
    doc = "A pod offloaded by a consumer: the provider creates (and recreates) a Pod with the same name and spec.",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ShadowPodSpec {
    /// Spec of the pod to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
}

/// Lifecycle phase of a pod.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PodPhase {
    /// Accepted but not all containers are running yet.
    Pending,
    /// Bound to a node with at least one container running.
    Running,
    /// All containers terminated successfully.
    Succeeded,
    /// All containers terminated, at least one with a failure.
    Failed,
    /// The state cannot be determined.
    #[default]
    Unknown,
}

/// Observed state of a ShadowPod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ShadowPodStatus {
    /// Phase of the pod created from the ShadowPod.
    #[serde(default)]
    pub phase: PodPhase,
}
