//! Resource reflection for liqo-rs: keeping twins of local objects in a peer cluster.
//!
//! When a namespace is offloaded, the objects its pods depend on (ConfigMaps, Secrets,
//! Services, Ingresses, ...) must exist, correctly translated, in the twin namespace of every
//! provider cluster. This crate does that, and is meant to be embedded:
//!
//! - [`Reflector`]: the seam, one per kind. Object safe; start and stop it per namespace pair.
//! - [`forge`]: pure translations (local object in, remote twin out), one [`Forge`](forge::Forge)
//!   per kind, unit-tested field by field.
//! - [`GenericReflector`]: the engine that turns a forge into a reflector: watches and stores on
//!   both sides, a deduplicating work queue with workers, per-object backoff, server-side apply
//!   with field manager `reflection.liqo.io`, ownership labels so it never touches objects it did
//!   not create, resync after reconnection, Events on failures, [`metrics`].
//! - [`ReflectionManager`]: all reflectors of one peering.
//!
//! Start with [`ReflectionManager::builder`], or implement [`Forge`](forge::Forge) for your own
//! kind and add it with [`ReflectionManagerBuilder::generic`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use async_trait::async_trait;
use liqo_core::ids::NamespacePair;

mod engine;
pub mod error;
pub mod event;
pub mod forge;
mod materialize;
pub mod metrics;
pub mod offloading;
pub mod pod;
mod queue;
pub mod serviceaccount;
pub mod shadowpod;
pub mod storage;
pub mod virtual_kubelet;
mod worker;

pub use engine::{
    CONTENT_HASH_ANNOTATION, Clusters, GenericReflector, Policy, Reflectable, ReflectionManager,
    ReflectionManagerBuilder, ReflectorConfig,
};
pub use error::{Error, Result};

/// Reflects one kind of object between the local cluster and a peer, per namespace pair.
///
/// The engine's [`GenericReflector`] implements it for any namespaced kind given a
/// [`Forge`](forge::Forge): the runnable example `examples/reflect_custom_resource.rs` reflects
/// a custom resource of its own that way, beside the built-in reflectors
/// (`ReflectionManager::builder(..).generic::<Backup, _, Backup>("backups", BackupForge)`).
/// Implement the trait directly for something else entirely. A complete
/// implementation that mirrors the *names* of local ConfigMaps into a log:
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use async_trait::async_trait;
/// use liqo_core::ids::NamespacePair;
/// use liqo_reflect::{Reflector, Result};
///
/// #[derive(Default)]
/// struct Audit {
///     started: Mutex<Vec<String>>,
/// }
///
/// #[async_trait]
/// impl Reflector for Audit {
///     fn name(&self) -> &str {
///         "audit"
///     }
///     async fn start_namespace(&self, pair: &NamespacePair) -> Result<()> {
///         self.started.lock().unwrap().push(pair.to_string());
///         Ok(())
///     }
///     async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()> {
///         self.started.lock().unwrap().retain(|p| *p != pair.to_string());
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// let audit: Arc<dyn Reflector> = Arc::new(Audit::default());
/// audit.start_namespace(&NamespacePair::new("demo", "demo-rome").unwrap()).await?;
/// assert!(audit.is_ready());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Reflector: Send + Sync + 'static {
    /// Short name, used in metrics and Events (e.g. `configmaps`).
    fn name(&self) -> &str;

    /// Starts reflecting objects of the local namespace into the remote one. Idempotent.
    async fn start_namespace(&self, pair: &NamespacePair) -> Result<()>;

    /// Stops reflecting in a namespace pair. Twins already written are left in place.
    async fn stop_namespace(&self, pair: &NamespacePair) -> Result<()>;

    /// Whether the reflector is ready to serve (default: always).
    fn is_ready(&self) -> bool {
        true
    }
}

/// Compile-time guard: the trait stays object safe.
#[allow(dead_code)]
fn _assert_object_safe(_: &dyn Reflector) {}
