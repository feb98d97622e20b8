//! The liqo-rs controller manager as a library: [`Args`] (its command line) and
//! [`run`]`(args, plugins)`, which hosts the controllers of the Liqo modules (networking,
//! authentication, offloading), each switched on or off by a flag. The shipped binary is a
//! main of a few lines; a third party's binary passes its own implementations of the seams
//! through [`Plugins`]: an [`IpamAllocator`] and a [`PeeringNegotiator`].
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use clap::Parser as _;
//! use liqo_controller_manager::{Args, Plugins};
//!
//! # async fn main_() -> anyhow::Result<()> {
//! // The shipped defaults, wrapped or replaced: here the IPAM is kept as it is.
//! let plugins = Plugins::default().ipam(|tree| Arc::new(tree));
//! liqo_controller_manager::run(Args::parse(), plugins).await
//! # }
//! ```
//!
//! Each module lives in its own file with its flags (`clap::Args`) and a `run` function.
#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::future::BoxFuture;
use liqo_auth::ClusterKeys;
pub use liqo_auth::{DefaultNegotiator, PeeringNegotiator};
use liqo_core::ids::ClusterId;
use liqo_core::runtime::Shutdown;
pub use liqo_ipam::{IpamAllocator, TreeAllocator};

mod authentication;
mod gateways;
mod networking;
mod offloading;

/// The liqo-rs controller manager.
///
/// Runs the controllers of the enabled modules:
/// - networking: IPAM (Network and IP resources get conflict-free allocations; peers'
///   overlapping CIDRs are remapped);
/// - authentication: the peering handshake on both sides (nonces, Tenants, Identities with
///   certificates signed by the cluster's CSR API, ResourceSlices and Quotas), the replication
///   of peering resources to providers, ForeignCluster status;
/// - offloading: VirtualNodes for accepted ResourceSlices.
///
/// As a provider, `--cluster-labels` describes the cluster to its consumers: their virtual
/// node for it carries these labels.
///
/// At start it records the cluster id in ConfigMap liqo/liqo-clusterid-configmap and creates
/// the cluster's key pair (Secret liqo/authentication-keys) if missing.
///
/// Examples:
///   liqo-controller-manager --kubeconfig ~/.kube/config --cluster-id rome \
///     --pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12
///   liqo-controller-manager --cluster-id milan --enable-networking=false \
///     --api-server-url https://milan.example.com:6443 --sharing-percentage 50
///   liqo-controller-manager --cluster-id naples --pod-cidr 10.244.0.0/16 \
///     --service-cidr 10.96.0.0/12 --cluster-labels topology.liqo.io/region=south
#[derive(Debug, Parser)]
#[allow(missing_docs)] // the flags are documented for --help
#[command(
    name = "liqo-controller-manager",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Args {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace where Liqo runs and keeps its own state.
    #[arg(long, default_value = "liqo")]
    liqo_namespace: String,
    /// The id of this cluster (a DNS label), unique among peers; written to ConfigMap
    /// liqo/liqo-clusterid-configmap. It never changes once set.
    #[arg(long)]
    cluster_id: ClusterId,
    /// API server URL peers use to reach this cluster (what issued identities point at).
    /// Default: the server of the kubeconfig in use.
    #[arg(long)]
    api_server_url: Option<String>,
    /// Run the networking module (IPAM).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_networking: bool,
    /// Run the authentication module (peering handshake, replication, ForeignClusters).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_authentication: bool,
    /// Run the offloading module (VirtualNodes for accepted ResourceSlices, one virtual
    /// kubelet per VirtualNode, namespace offloading, ShadowPods, the offloading webhooks).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_offloading: bool,
    #[command(flatten)]
    networking: networking::NetworkingArgs,
    #[command(flatten)]
    authentication: authentication::AuthenticationArgs,
    #[command(flatten)]
    offloading: offloading::OffloadingArgs,
}

/// How a plug-in replaces (or wraps) a shipped default.
type Decorator<D, T> = Box<dyn FnOnce(D) -> Arc<T> + Send>;

/// The implementations of the seams the controller-manager runs. Each receives the shipped
/// default, built from the flags, and returns what to use: the default itself, a wrapper
/// around it, or something else entirely.
pub struct Plugins {
    ipam: Decorator<TreeAllocator, dyn IpamAllocator>,
    negotiator: Decorator<DefaultNegotiator, dyn PeeringNegotiator>,
}

impl Default for Plugins {
    /// The shipped defaults: [`TreeAllocator`] and [`DefaultNegotiator`].
    fn default() -> Self {
        Self {
            ipam: Box::new(|tree| Arc::new(tree)),
            negotiator: Box::new(|default| Arc::new(default)),
        }
    }
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins").finish_non_exhaustive()
    }
}

impl Plugins {
    /// The IPAM: `f` gets the [`TreeAllocator`] of `--ipam-pools` and returns the allocator
    /// the IPAM controllers use.
    #[must_use]
    pub fn ipam(
        mut self,
        f: impl FnOnce(TreeAllocator) -> Arc<dyn IpamAllocator> + Send + 'static,
    ) -> Self {
        self.ipam = Box::new(f);
        self
    }

    /// The peering negotiator: `f` gets the [`DefaultNegotiator`] of the flags and returns
    /// the negotiator the authentication controllers use.
    #[must_use]
    pub fn negotiator(
        mut self,
        f: impl FnOnce(DefaultNegotiator) -> Arc<dyn PeeringNegotiator> + Send + 'static,
    ) -> Self {
        self.negotiator = Box::new(f);
        self
    }
}

/// What every module gets.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) cluster_id: ClusterId,
    pub(crate) keys: Arc<ClusterKeys>,
    pub(crate) namespace: String,
    pub(crate) api_server_url: String,
    /// The API server URL of the kubeconfig in use (what processes started here talk to).
    pub(crate) kube_server: String,
    pub(crate) networking_enabled: bool,
    pub(crate) shutdown: Shutdown,
}

/// Runs the controller-manager until SIGTERM or SIGINT (or until a module fails, which
/// stops the others): records the cluster id and keys, then runs the enabled modules with
/// `plugins`.
///
/// # Errors
///
/// When the cluster cannot be reached or set up, or a module fails; the error says which.
pub async fn run(args: Args, plugins: Plugins) -> anyhow::Result<()> {
    let (client, server) = client(args.kubeconfig.as_deref()).await?;
    let keys = liqo_auth::bootstrap::ensure_cluster(
        &client,
        &args.liqo_namespace,
        &args.cluster_id,
        env!("CARGO_PKG_VERSION"),
    )
    .await
    .context("setting up the cluster identity")?;
    liqo_auth::bootstrap::publish_cluster_labels(
        &client,
        &args.liqo_namespace,
        &args.authentication.cluster_labels,
    )
    .await
    .context("recording the cluster labels")?;
    let shared = Shared {
        client,
        cluster_id: args.cluster_id.clone(),
        keys: Arc::new(keys),
        namespace: args.liqo_namespace.clone(),
        api_server_url: args
            .api_server_url
            .clone()
            .unwrap_or_else(|| server.clone()),
        kube_server: server,
        networking_enabled: args.enable_networking,
        shutdown: Shutdown::with_signals(),
    };
    tracing::info!(cluster_id = %shared.cluster_id, api_server = %shared.api_server_url,
        networking = args.enable_networking, authentication = args.enable_authentication,
        offloading = args.enable_offloading, "liqo-controller-manager starting");

    let mut modules: Vec<BoxFuture<'static, anyhow::Result<()>>> = Vec::new();
    if args.enable_networking {
        modules.push(Box::pin(networking::run(
            shared.clone(),
            args.networking,
            args.kubeconfig.clone(),
            plugins.ipam,
        )));
    }
    if args.enable_authentication {
        let vnodes = offloading::creates_virtual_nodes(args.enable_offloading);
        modules.push(Box::pin(authentication::run(
            shared.clone(),
            args.authentication,
            vnodes,
            plugins.negotiator,
        )));
    }
    if args.enable_offloading {
        modules.push(Box::pin(offloading::run(
            shared.clone(),
            args.offloading,
            args.kubeconfig.clone(),
        )));
    }
    // A module that fails stops the process (and the others with it).
    let result = futures::future::try_join_all(modules).await;
    shared.shutdown.trigger();
    result.map(|_| ())
}

/// The client and the API server URL of the kubeconfig in use.
async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<(kube::Client, String)> {
    let config = liqo_core::runtime::kube_config(kubeconfig).await?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    Ok((
        kube::Client::try_from(config).context("building the Kubernetes client")?,
        server,
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["x", "--cluster-id", "rome", "--enable-networking=false"])
            .unwrap();
        assert!(!a.enable_networking && a.enable_authentication && a.enable_offloading);
        assert!(
            Args::try_parse_from(["x"]).is_err(),
            "--cluster-id is required"
        );
        assert!(Args::try_parse_from(["x", "--cluster-id", "Not_Valid"]).is_err());
    }

    #[test]
    fn cluster_labels_are_parsed_and_checked() {
        let a = Args::try_parse_from(["x", "--cluster-id", "naples"]).unwrap();
        assert!(a.authentication.cluster_labels.is_empty());
        let a = Args::try_parse_from([
            "x",
            "--cluster-id",
            "naples",
            "--cluster-labels",
            "topology.liqo.io/region=south,tier=gold",
        ])
        .unwrap();
        let labels = a.authentication.cluster_labels;
        assert_eq!(labels["topology.liqo.io/region"], "south");
        assert_eq!(labels["tier"], "gold");
        let e = Args::try_parse_from(["x", "--cluster-id", "naples", "--cluster-labels", "foo"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--cluster-labels") && e.contains("foo") && e.contains("missing '='"),
            "{e}"
        );
    }
}
