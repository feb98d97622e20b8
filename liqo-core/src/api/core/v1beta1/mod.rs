//! Version `v1beta1` of the `core.liqo.io` API group.

mod common;
mod foreign_cluster;

pub use common::{IngressType, LoadBalancerType, StorageType};
pub use foreign_cluster::{
    Condition, ConditionStatusType, ConditionType, ForeignCluster, ForeignClusterSpec,
    ForeignClusterStatus, Module, Modules, RoleType, TenantNamespaceType,
};

/// The API group of this module.
pub const GROUP: &str = "core.liqo.io";
/// The API version of this module.
pub const VERSION: &str = "v1beta1";
