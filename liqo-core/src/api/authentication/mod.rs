//! API group `authentication.liqo.io`: the peering handshake and the credentials it produces.
//!
//! Used by the liqo-auth crate (the default `PeeringNegotiator`): a provider keeps one
//! [`Tenant`](v1beta1::Tenant) per consumer, a consumer keeps [`Identity`](v1beta1::Identity)
//! objects holding the credentials it received, [`ResourceSlice`](v1beta1::ResourceSlice)s carry
//! resource requests and their answers, and [`Renew`](v1beta1::Renew)s refresh expiring
//! certificates.

pub mod v1beta1;
