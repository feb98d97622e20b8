//! Version `v1alpha1` of the `ipam.liqo.io` API group.

mod common;
mod ip;
mod network;

pub use common::ServiceTemplate;
pub use ip::{Ip, IpSpec, IpStatus};
pub use network::{Network, NetworkSpec, NetworkStatus};

/// The API group of this module.
pub const GROUP: &str = "ipam.liqo.io";
/// The API version of this module.
pub const VERSION: &str = "v1alpha1";
