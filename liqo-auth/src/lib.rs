//! Peering and authentication for liqo-rs.
//!
//! This crate will host the `PeeringNegotiator` trait and the default Liqo v1 peering flow
//! (it is a skeleton today). The authentication API types live in
//! [`liqo_core::api::authentication`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod crypto;
pub mod error;

pub use crypto::{
    ClusterKeys, KeyAlgorithm, Nonce, PublicKey, Signature, check_csr, create_csr, sign_nonce,
    verify_nonce,
};
pub use error::{Error, Result};
