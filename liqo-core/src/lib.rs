//! Shared foundation of liqo-rs: the Liqo API types, identifiers, label keys and runtime helpers.
//!
//! liqo-rs is [Liqo](https://liqo.io), the Kubernetes multi-cluster system, as a Rust SDK. This
//! crate is what every other liqo-rs crate (and any third-party integration) builds on:
//!
//! - [`api`]: Rust types for every Liqo custom resource, with upstream's API groups, versions,
//!   kinds and field names, so manifests written for Liqo apply unchanged.
//!   [`api::crds`] lists their CustomResourceDefinitions.
//! - [`ids`]: validated identifiers such as [`ClusterId`](ids::ClusterId) and
//!   [`NamespacePair`](ids::NamespacePair).
//! - [`labels`]: every label and annotation key Liqo uses, as documented constants.
//! - [`runtime`]: helpers for controllers: per-object exponential backoff and shutdown signals.
//!
//! Like kube-rs, this crate does not choose a Kubernetes version: the final binary enables one
//! `k8s-openapi` version feature (liqo-rs binaries use `v1_36`).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod api;
pub mod error;
pub mod ids;
pub mod labels;
pub mod quantity;
pub mod runtime;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;

pub use error::{BoxError, Error, Result};
