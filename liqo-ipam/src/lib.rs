//! IP address management for liqo-rs.
//!
//! This crate will host the `IpamAllocator` trait, the default prefix-tree allocator and the
//! controllers of the `ipam.liqo.io/v1alpha1` Network and IP resources (see the project's issue
//! tracker; it is a skeleton today). The API types live in [`liqo_core::api::ipam`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod error;
pub use error::{Error, Result};
