//! Version `v1beta1` of the `offloading.liqo.io` API group.

mod common;
mod namespace_map;
mod namespace_offloading;
mod quota;
mod shadow_endpoint_slice;
mod shadow_pod;
mod virtual_node;
mod vk_options_template;

pub use common::{ConditionStatus, DeploymentTemplate};
pub use namespace_map::{
    MappingPhase, NamespaceMap, NamespaceMapSpec, NamespaceMapStatus, RemoteNamespaceStatus,
};
pub use namespace_offloading::{
    NAMESPACE_OFFLOADING_NAME, NamespaceMappingStrategy, NamespaceOffloading,
    NamespaceOffloadingSpec, NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
    RemoteNamespaceCondition, RemoteNamespaceConditionType,
};
pub use quota::{LimitsEnforcement, Quota, QuotaSpec};
pub use shadow_endpoint_slice::{
    EndpointSliceTemplate, ShadowEndpointSlice, ShadowEndpointSliceSpec,
};
pub use shadow_pod::{PodPhase, ShadowPod, ShadowPodSpec, ShadowPodStatus};
pub use virtual_node::{
    Affinity, OffloadingPatch, VirtualNode, VirtualNodeCondition, VirtualNodeConditionStatus,
    VirtualNodeConditionType, VirtualNodeSpec, VirtualNodeStatus,
};
pub use vk_options_template::{
    ReflectionType, ReflectorConfig, VkOptionsTemplate, VkOptionsTemplateSpec,
};

/// The API group of this module.
pub const GROUP: &str = "offloading.liqo.io";
/// The API version of this module.
pub const VERSION: &str = "v1beta1";
