//! The `VkOptionsTemplate` kind: how to run the virtual kubelet of a virtual node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Options used to build the virtual-kubelet Deployment of a VirtualNode.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "VkOptionsTemplate",
    plural = "vkoptionstemplates",
    shortname = "vkot",
    shortname = "vkopt",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "Options for the virtual kubelets of the VirtualNodes that reference it (image, resources, reflection settings, extra flags).",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VkOptionsTemplateSpec {
    /// Whether the virtual kubelet creates its Node.
    pub create_node: bool,
    /// Whether the network status is left out of the node conditions.
    pub disable_network_check: bool,
    /// Image of the virtual-kubelet container.
    pub container_image: String,
    /// Whether the virtual kubelet exposes metrics.
    pub metrics_enabled: bool,
    /// Address the metrics are served on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_address: Option<String>,
    /// Label keys never copied to remote objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_not_reflected: Vec<String>,
    /// Annotation keys never copied to remote objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations_not_reflected: Vec<String>,
    /// Per-resource reflector settings, keyed by resource (for example `service`, `configmap`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reflectors_config: BTreeMap<String, ReflectorConfig>,
    /// Resources of the virtual-kubelet container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra command-line arguments of the virtual kubelet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Extra annotations of the virtual-kubelet pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_annotations: BTreeMap<String, String>,
    /// Extra labels of the virtual-kubelet pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_labels: BTreeMap<String, String>,
    /// Extra annotations of the virtual Node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_extra_annotations: BTreeMap<String, String>,
    /// Extra labels of the virtual Node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_extra_labels: BTreeMap<String, String>,
    /// Number of virtual-kubelet replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pull secrets for the virtual-kubelet image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::api::schema::local_object_references")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Pull policy of the virtual-kubelet image (`Always`, `IfNotPresent`, `Never`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// Tolerations of the virtual-kubelet pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// Settings of the reflector of one resource kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ReflectorConfig {
    /// Number of workers of the reflector.
    #[serde(rename = "workers")]
    #[schemars(schema_with = "crate::api::schema::uint32")]
    pub num_workers: u32,
    /// Which objects are reflected.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ReflectionType>,
}

/// Which objects of a kind a reflector copies to the provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ReflectionType {
    /// Only objects carrying the allow annotation.
    AllowList,
    /// Every object except those carrying the deny annotation.
    DenyList,
    /// Liqo's built-in rules for the kind.
    CustomLiqo,
}
