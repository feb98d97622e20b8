//! Version `v1beta1` of the `authentication.liqo.io` API group.

mod common;
mod identity;
mod renew;
mod resource_slice;
mod tenant;

pub use common::{AuthParams, AwsConfig};
pub use identity::{Identity, IdentitySpec, IdentityStatus, IdentityType};
pub use renew::{Renew, RenewSpec, RenewStatus};
pub use resource_slice::{
    RESOURCE_SLICE_CLASS_DEFAULT, ResourceSlice, ResourceSliceCondition,
    ResourceSliceConditionStatus, ResourceSliceConditionType, ResourceSliceSpec,
    ResourceSliceStatus,
};
pub use tenant::{AuthzPolicy, Tenant, TenantCondition, TenantSpec, TenantStatus};

/// The API group of this module.
pub const GROUP: &str = "authentication.liqo.io";
/// The API version of this module.
pub const VERSION: &str = "v1beta1";
