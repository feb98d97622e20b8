//! The `NamespaceOffloading` kind: whether and how a namespace is extended to provider clusters.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NodeSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConditionStatus;

/// The only name a NamespaceOffloading may have: there is one per offloaded namespace.
pub const NAMESPACE_OFFLOADING_NAME: &str = "offloading";

/// Desired offloading of the namespace the object lives in.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "NamespaceOffloading",
    plural = "namespaceoffloadings",
    shortname = "nso",
    shortname = "nsof",
    shortname = "nsoff",
    shortname = "nsoffloading",
    category = "liqo",
    namespaced,
    status = "NamespaceOffloadingStatus",
    derive = "PartialEq",
    doc = "Enables the offloading of the namespace it lives in (it must be named `offloading`): to which providers, under which remote name, and where its pods may run.",
    printcolumn = r#"{"name":"NamespaceMappingStrategy","type":"string","jsonPath":".spec.namespaceMappingStrategy"}"#,
    printcolumn = r#"{"name":"PodOffloadingStrategy","type":"string","jsonPath":".spec.podOffloadingStrategy"}"#,
    printcolumn = r#"{"name":"OffloadingPhase","type":"string","jsonPath":".status.offloadingPhase"}"#,
    printcolumn = r#"{"name":"RemoteNamespaceName","type":"string","priority":10,"jsonPath":".status.remoteNamespaceName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOffloadingSpec {
    /// How the name of the remote namespaces is chosen.
    #[serde(default)]
    pub namespace_mapping_strategy: NamespaceMappingStrategy,
    /// Name of the remote namespaces, used (and required) with the `SelectedName` strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_namespace_name: Option<String>,
    /// Where the pods of the namespace may be scheduled.
    #[serde(default)]
    pub pod_offloading_strategy: PodOffloadingStrategy,
    /// Selector matched against the labels of the virtual nodes to pick the providers; without
    /// terms every provider is selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<NodeSelector>,
}

/// How remote namespace names are derived from the local one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum NamespaceMappingStrategy {
    /// Same name as the local namespace (creation fails on a name clash).
    EnforceSameName,
    /// The local name followed by the local cluster ID, unique across consumers.
    #[default]
    DefaultName,
    /// The name given in `remoteNamespaceName` (creation fails on a name clash).
    SelectedName,
}

/// Where the pods of an offloaded namespace may run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PodOffloadingStrategy {
    /// Only on the local cluster (the namespace is replicated but no pod is offloaded).
    Local,
    /// Only on the selected providers.
    Remote,
    /// On the local cluster and on the selected providers.
    #[default]
    LocalAndRemote,
}

/// Overall progress of the offloading of a namespace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum OffloadingPhase {
    /// The remote namespaces exist on every selected provider.
    Ready,
    /// No provider matches the cluster selector.
    NoClusterSelected,
    /// Remote namespaces are being created.
    InProgress,
    /// Creating some of the remote namespaces failed.
    SomeFailed,
    /// Creating every remote namespace failed.
    AllFailed,
    /// The remote namespaces are being deleted.
    Terminating,
}

impl OffloadingPhase {
    /// The phase as it is written in the status (`Ready`, `AllFailed`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::NoClusterSelected => "NoClusterSelected",
            Self::InProgress => "InProgress",
            Self::SomeFailed => "SomeFailed",
            Self::AllFailed => "AllFailed",
            Self::Terminating => "Terminating",
        }
    }
}

impl std::fmt::Display for OffloadingPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Aspect of a remote namespace a condition reports on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RemoteNamespaceConditionType {
    /// Whether the namespace is to be offloaded to this provider.
    OffloadingRequired,
    /// Whether the remote namespace exists and is usable.
    Ready,
}

/// A condition of the namespace created in one provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteNamespaceCondition {
    /// What the condition is about.
    #[serde(rename = "type")]
    pub type_: RemoteNamespaceConditionType,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason of the last change, in UpperCamelCase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details of the last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed offloading of a namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOffloadingStatus {
    /// Name the remote namespaces were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_namespace_name: Option<String>,
    /// Overall progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offloading_phase: Option<OffloadingPhase>,
    /// Conditions of the remote namespace, by provider cluster ID.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_namespaces_conditions: BTreeMap<String, Vec<RemoteNamespaceCondition>>,
    /// Generation of the spec the status reflects, so tools can tell whether it is up to date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
