//! Resource reflection and pod offloading for liqo-rs.
//!
//! This crate will host the `Reflector` trait, the generic reflection engine and the virtual
//! kubelet library (it is a skeleton today). The offloading API types live in
//! [`liqo_core::api::offloading`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod error;
pub use error::{Error, Result};
