//! Peering and authentication for liqo-rs: the [`PeeringNegotiator`] seam and upstream Liqo
//! v1's handshake between a consumer and a provider cluster.
//!
//! | module | what |
//! |---|---|
//! | [`crypto`] | cluster keys, nonces, signatures, CSRs (pure) |
//! | [`negotiator`] | the [`PeeringNegotiator`] trait and the [`DefaultNegotiator`] |
//! | [`forge`] | every object of the flow with upstream's names and labels (pure) |
//! | [`grant`] | what the default ResourceSlice class grants (pure) |
//! | [`cluster_labels`] | the provider's `--cluster-labels`, published to virtual nodes (pure) |
//! | [`renewal`] | the two-thirds-of-lifetime renewal rule (pure) |
//! | [`signer`] | signing CSRs through the Kubernetes CSR API |
//! | [`kubeconfig`] | kubeconfigs of identities |
//! | [`bootstrap`] | cluster id ConfigMap, keys Secret, ClusterRoles |
//! | [`policy`] | admission policies binding Tenants to their tenant namespace and peering user |
//! | [`controller`] | the controllers of both sides, the CRD replicator, ForeignCluster |
//!
//! The authentication API types live in [`liqo_core::api::authentication`].
//!
//! ```no_run
//! # async fn f(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use liqo_auth::{DefaultNegotiator, NegotiatorConfig, signer::KubernetesSigner};
//! use liqo_core::ids::ClusterId;
//!
//! let id = ClusterId::new("rome")?;
//! let keys = Arc::new(liqo_auth::bootstrap::ensure_cluster(&client, "liqo", &id, "0.1.0").await?);
//! let signer = KubernetesSigner::new(client.clone());
//! let config = NegotiatorConfig {
//!     api_server_url: "https://rome.example:6443".into(),
//!     api_server_ca: signer.cluster_ca("liqo").await?,
//!     sharing: Default::default(),
//!     default_class_enabled: true,
//! };
//! let negotiator = Arc::new(DefaultNegotiator::new(id.clone(), keys.clone(), signer, config));
//! let config = liqo_auth::controller::Config::new(id, keys);
//! liqo_auth::controller::run(client, negotiator, config, liqo_core::runtime::shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod cluster_labels;
pub mod controller;
pub mod crypto;
pub mod error;
pub mod forge;
pub mod grant;
pub mod kubeconfig;
pub mod names;
pub mod negotiator;
pub mod policy;
pub mod renewal;
pub mod signer;

pub use crypto::{
    ClusterKeys, KeyAlgorithm, Nonce, PublicKey, Signature, check_csr, create_csr, sign_nonce,
    verify_nonce,
};
pub use error::{Error, Result};
pub use negotiator::{DefaultNegotiator, NegotiatorConfig, PeeringNegotiator};
