//! Network fabric for liqo-rs.
//!
//! This crate will host the `TunnelBackend` trait, the WireGuard gateway, NAT remapping and the
//! in-cluster overlay (it is a skeleton today). The networking API types live in
//! [`liqo_core::api::networking`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod error;
pub use error::{Error, Result};
