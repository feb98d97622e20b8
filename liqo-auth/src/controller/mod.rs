//! The controllers of the authentication module (both sides of the handshake), the CRD
//! replicator and the ForeignCluster summary.
//!
//! | controller | watches | does |
//! |---|---|---|
//! | nonce | Secrets `liqo.io/nonce=true` (provider) | writes `data.nonce` |
//! | nonce signer | Secrets `liqo.io/signed-nonce=true` (consumer) | writes `data.signedNonce` |
//! | tenant | Tenants (provider) | verifies, signs the CSR, `status.authParams`, RoleBinding to `liqo-remote-controlplane`; finalizer removes the binding |
//! | identity | Identities (consumer) | kubeconfig Secret `kubeconfig-<identity>`; control-plane renewal through `Renew` |
//! | resourceslice | ResourceSlices (both) | consumer: completes the slice, Identity `resourceslice-<P>`, VirtualNode; provider: authentication, grant, Quota |
//! | renew | replicated Renews (provider) | fresh certificate in the status |
//! | replicator | control-plane kubeconfig Secrets (consumer) | per provider, copies ResourceSlices, NamespaceMaps and Renews labelled `liqo.io/replication=true` into the provider's tenant namespace and their status back |
//! | foreigncluster | tenant namespaces and what they hold | `ForeignCluster <peer>` with role, modules and conditions |
//!
//! ```no_run
//! # async fn f(client: kube::Client, negotiator: std::sync::Arc<dyn liqo_auth::PeeringNegotiator>,
//! #           keys: std::sync::Arc<liqo_auth::ClusterKeys>) -> liqo_auth::Result<()> {
//! use liqo_auth::controller::{self, Config};
//!
//! let config = Config::new(negotiator.cluster_id().clone(), keys);
//! controller::run(client, negotiator, config, liqo_core::runtime::shutdown_signal()).await
//! # }
//! ```

use std::collections::BTreeMap;

use liqo_core::api::offloading::v1beta1::LimitsEnforcement;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::{BoxFuture, FutureExt as _, Shared};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use liqo_core::ids::ClusterId;
use liqo_core::runtime::KeyedBackoff;
use tracing::{info, warn};

use crate::crypto::ClusterKeys;
use crate::error::{Error, Result};
use crate::names;
use crate::negotiator::PeeringNegotiator;

pub mod foreigncluster;
mod identity;
mod nonce;
mod renew;
pub mod replicator;
mod resourceslice;
mod tenant;

/// Configuration of the controllers.
#[derive(Clone)]
pub struct Config {
    /// The local cluster id.
    pub cluster_id: ClusterId,
    /// The local keys (their private key goes into the kubeconfigs of identities).
    pub keys: Arc<ClusterKeys>,
    /// The Liqo namespace.
    pub namespace: String,
    /// Whether accepted ResourceSlices get a VirtualNode (the offloading module is enabled).
    pub create_virtual_nodes: bool,
    /// Whether the networking module is enabled (shown in ForeignClusters).
    pub networking_enabled: bool,
    /// The local liqo-rs version (shown in ForeignClusters).
    pub version: String,
    /// How often everything is re-checked even without events.
    pub resync: Duration,
    /// Labels of this cluster (upstream `--cluster-labels`): as a provider, published in the
    /// status of the ResourceSlices it accepts (`status.nodeLabels`), which the consumer puts
    /// on the virtual node.
    pub cluster_labels: BTreeMap<String, String>,
    /// How the Quota of each accepted ResourceSlice is enforced on the ShadowPods of its user
    /// (upstream `--default-limits-enforcement`; liqo-rs defaults to `Soft`: the pods' requests
    /// and their number count against the grant).
    pub limits_enforcement: LimitsEnforcement,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cluster_id", &self.cluster_id)
            .field("namespace", &self.namespace)
            .field("create_virtual_nodes", &self.create_virtual_nodes)
            .field("cluster_labels", &self.cluster_labels)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults: namespace `liqo`, virtual nodes and networking enabled, resync 60 s.
    pub fn new(cluster_id: ClusterId, keys: Arc<ClusterKeys>) -> Self {
        Self {
            cluster_id,
            keys,
            namespace: names::LIQO_NAMESPACE.to_owned(),
            create_virtual_nodes: true,
            networking_enabled: true,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            resync: Duration::from_secs(60),
            cluster_labels: BTreeMap::new(),
            limits_enforcement: LimitsEnforcement::Soft,
        }
    }
}

/// Shared state of the controllers.
pub(crate) struct Context {
    pub(crate) client: Client,
    pub(crate) negotiator: Arc<dyn PeeringNegotiator>,
    pub(crate) config: Config,
    pub(crate) recorder: Recorder,
    pub(crate) backoff: KeyedBackoff<String>,
}

impl Context {
    /// Publishes an event about `obj` (best effort).
    pub(crate) async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, "cannot publish an event");
        }
    }

    pub(crate) fn error_policy<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        error: &Error,
    ) -> kube::runtime::controller::Action {
        let key = format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default()
        );
        warn!(object = %key, error = %error, "reconcile failed");
        kube::runtime::controller::Action::requeue(self.backoff.next(&key))
    }

    pub(crate) fn reset_backoff<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        let key = format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default()
        );
        self.backoff.reset(&key);
    }
}

pub(crate) type ShutdownFuture = Shared<BoxFuture<'static, ()>>;

/// Runs every controller of the authentication module until `shutdown` resolves.
///
/// # Errors
///
/// None today (controllers retry forever); kept fallible for start-up checks.
pub async fn run(
    client: Client,
    negotiator: Arc<dyn PeeringNegotiator>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "liqo-controller-manager".into(),
            instance: None,
        },
    );
    let ctx = Arc::new(Context {
        client,
        negotiator,
        config,
        recorder,
        backoff: KeyedBackoff::default(),
    });
    let shutdown: ShutdownFuture = shutdown.boxed().shared();
    info!(cluster_id = %ctx.config.cluster_id, "authentication controllers running");
    futures::join!(
        nonce::run_creator(ctx.clone(), shutdown.clone()),
        nonce::run_signer(ctx.clone(), shutdown.clone()),
        tenant::run(ctx.clone(), shutdown.clone()),
        identity::run(ctx.clone(), shutdown.clone()),
        resourceslice::run(ctx.clone(), shutdown.clone()),
        renew::run(ctx.clone(), shutdown.clone()),
        replicator::run(ctx.clone(), shutdown.clone()),
        foreigncluster::run(ctx.clone(), shutdown.clone()),
    );
    info!("authentication controllers stopped");
    Ok(())
}

/// Drains a controller stream, logging nothing per item.
pub(crate) async fn drain<S, T>(stream: S)
where
    S: futures::Stream<Item = T>,
{
    stream.for_each(|_| std::future::ready(())).await;
}

/// Maps an object to the ObjectRef of its namespace.
pub(crate) fn namespace_ref<K: Resource>(
    obj: &K,
) -> Option<ObjectRef<k8s_openapi::api::core::v1::Namespace>> {
    obj.meta().namespace.as_deref().map(ObjectRef::new)
}

/// Server-side apply parameters of the authentication controllers.
pub(crate) fn apply_params() -> kube::api::PatchParams {
    kube::api::PatchParams::apply(names::FIELD_MANAGER).force()
}

/// Whether a Kubernetes error is a 404.
pub(crate) fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
