//! The `VirtualNode` kind: a virtual node standing for (part of) a provider cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerImage, LocalObjectReference, NodeAffinity, ObjectReference, ResourceQuotaSpec, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DeploymentTemplate;
use crate::api::core::v1beta1::{IngressType, LoadBalancerType, StorageType};

/// Desired state of a VirtualNode.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "VirtualNode",
    plural = "virtualnodes",
    shortname = "vn",
    shortname = "vnode",
    shortname = "virno",
    shortname = "vno",
    category = "liqo",
    namespaced,
    status = "VirtualNodeStatus",
    derive = "PartialEq",
    doc = "A virtual node of the local cluster backed by a provider cluster: Liqo runs a virtual kubelet for it and, unless disabled, registers the corresponding Node.",
    printcolumn = r#"{"name":"ClusterID","type":"string","jsonPath":".spec.clusterID"}"#,
    printcolumn = r#"{"name":"Create Node","type":"boolean","jsonPath":".spec.createNode"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Node","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Node\")].status"}"#,
    printcolumn = r#"{"name":"VirtualKubelet","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"VirtualKubelet\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeSpec {
    /// Cluster ID of the provider the virtual node stands for.
    #[serde(rename = "clusterID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::cluster_id")]
    pub cluster_id: Option<String>,
    /// Deployment running the virtual kubelet (filled from a VkOptionsTemplate when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<DeploymentTemplate>,
    /// Constraints added to the pods offloaded through this node, to target a subset of the
    /// provider's nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offloading_patch: Option<OffloadingPatch>,
    /// Whether the Node object is created (pods can be scheduled on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_node: Option<bool>,
    /// Whether the network status is left out of the node conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_network_check: Option<bool>,
    /// Secret holding the kubeconfig the virtual kubelet uses to reach the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::local_object_reference")]
    pub kubeconfig_secret_ref: Option<LocalObjectReference>,
    /// Container images reported as present on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ContainerImage>,
    /// Resources assigned to the node: `hard` is its capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_quota: Option<ResourceQuotaSpec>,
    /// Labels to put on the node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to put on the node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Taints to put on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Storage classes the provider offers through this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_classes: Vec<StorageType>,
    /// Ingress classes the provider offers through this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_classes: Vec<IngressType>,
    /// Load-balancer classes the provider offers through this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_classes: Vec<LoadBalancerType>,
    /// VkOptionsTemplate to build `template` from (Liqo's default one when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vk_options_template_ref: Option<ObjectReference>,
}

/// Node affinity added to offloaded pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// Node affinity, evaluated against the provider's nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
}

/// Changes applied to every pod offloaded through a virtual node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffloadingPatch {
    /// Annotation keys not copied to the remote pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations_not_reflected: Vec<String>,
    /// Label keys not copied to the remote pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_not_reflected: Vec<String>,
    /// Node selector added to the remote pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations added to the remote pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity added to the remote pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// RuntimeClass the remote pod runs with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
}

/// Component of a virtual node a condition reports on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum VirtualNodeConditionType {
    /// The virtual-kubelet Deployment.
    VirtualKubelet,
    /// The Node object.
    Node,
}

/// Lifecycle phase reported by a virtual-node condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum VirtualNodeConditionStatus {
    /// Nothing to report.
    #[default]
    None,
    /// The component is up.
    Running,
    /// The component is being created.
    Creating,
    /// The component is being drained.
    Draining,
    /// The component is being deleted.
    Deleting,
}

/// A condition reported in the status of a VirtualNode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeCondition {
    /// Component the condition is about.
    #[serde(rename = "type")]
    pub type_: VirtualNodeConditionType,
    /// Phase of the component.
    #[serde(default)]
    pub status: VirtualNodeConditionStatus,
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

/// Observed state of a VirtualNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VirtualNodeStatus {
    /// State of the virtual kubelet and of the Node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<VirtualNodeCondition>,
}
