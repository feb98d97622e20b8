//! The authentication module: both sides of the peering handshake, the CRD replicator and
//! the ForeignCluster summary (liqo-auth).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use liqo_auth::grant::SharingPolicy;
use liqo_auth::signer::KubernetesSigner;
use liqo_auth::{DefaultNegotiator, NegotiatorConfig, controller};
use liqo_core::api::offloading::v1beta1::LimitsEnforcement;

use crate::Shared;

/// Flags of the authentication module.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Authentication and resource sharing")]
pub(crate) struct AuthenticationArgs {
    /// Percentage of the physical nodes' allocatable resources shared with consumers.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    sharing_percentage: u8,
    /// CPU granted to a ResourceSlice that asks for none.
    #[arg(long, default_value = "4")]
    default_slice_cpu: String,
    /// Memory granted to a ResourceSlice that asks for none.
    #[arg(long, default_value = "8Gi")]
    default_slice_memory: String,
    /// Pods granted to a ResourceSlice that asks for none.
    #[arg(long, default_value = "110")]
    default_slice_pods: String,
    /// Handle ResourceSlices of class `default` (disable to leave them to another controller).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    default_resource_slice_class_enabled: bool,
    /// Requested lifetime of issued certificates in seconds (at least 600; default: the
    /// signer's). They are renewed at two thirds of their lifetime.
    #[arg(long, value_parser = clap::value_parser!(u64).range(600..))]
    certificate_lifetime_seconds: Option<u64>,
    /// How the resources granted to a consumer are enforced on its offloaded pods: Soft (their
    /// requests and their number count against the grant), Hard (limits must equal requests,
    /// and count) or None (not enforced; upstream's default).
    #[arg(long, default_value = "Soft", value_parser = ["Hard", "Soft", "None"])]
    default_limits_enforcement: String,
    /// How often every peering object is re-checked without events (seconds).
    #[arg(long, default_value_t = 60)]
    resync_seconds: u64,
    /// Labels of this cluster, `key=value,...` (e.g. `topology.liqo.io/region=south`): given to
    /// the consumers of its resources, which put them on the virtual node representing this
    /// cluster (for `liqoctl offload namespace --selector` and pod affinities).
    #[arg(long, value_name = "KEY=VALUE,...", default_value = "", hide_default_value = true,
        value_parser = parse_cluster_labels)]
    pub(crate) cluster_labels: BTreeMap<String, String>,
}

/// Parses `--cluster-labels` (clap value parser: bad input stops the process at start).
fn parse_cluster_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    liqo_auth::cluster_labels::parse(s).map_err(|e| e.to_string())
}

/// Runs the authentication controllers until shutdown.
pub(crate) async fn run(
    shared: Shared,
    args: AuthenticationArgs,
    create_virtual_nodes: bool,
    plugin: crate::Decorator<DefaultNegotiator, dyn liqo_auth::PeeringNegotiator>,
) -> anyhow::Result<()> {
    for (name, value) in [
        ("--default-slice-cpu", &args.default_slice_cpu),
        ("--default-slice-memory", &args.default_slice_memory),
        ("--default-slice-pods", &args.default_slice_pods),
    ] {
        liqo_auth::grant::parse_quantity(value).with_context(|| format!("invalid {name}"))?;
    }
    let signer = KubernetesSigner::new(shared.client.clone())
        .expiration(args.certificate_lifetime_seconds.map(Duration::from_secs));
    // kube-root-ca.crt is published by the kube-controller-manager shortly after the
    // namespace is created.
    let start = std::time::Instant::now();
    let ca = loop {
        match signer.cluster_ca(&shared.namespace).await {
            Ok(ca) => break ca,
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                tracing::debug!(error = %e, "waiting for the cluster CA");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(e).context(
                    "reading the cluster CA (ConfigMap kube-root-ca.crt): is the \
                     kube-controller-manager running?",
                );
            }
        }
    };
    let config = NegotiatorConfig {
        api_server_url: shared.api_server_url.clone(),
        api_server_ca: ca,
        sharing: SharingPolicy {
            percentage: args.sharing_percentage,
            default_resources: BTreeMap::from([
                ("cpu".to_owned(), Quantity(args.default_slice_cpu)),
                ("memory".to_owned(), Quantity(args.default_slice_memory)),
                ("pods".to_owned(), Quantity(args.default_slice_pods)),
            ]),
        },
        default_class_enabled: args.default_resource_slice_class_enabled,
    };
    let negotiator = plugin(DefaultNegotiator::new(
        shared.cluster_id.clone(),
        shared.keys.clone(),
        signer,
        config,
    ));
    let mut config = controller::Config::new(shared.cluster_id.clone(), shared.keys.clone());
    config.namespace = shared.namespace.clone();
    config.create_virtual_nodes = create_virtual_nodes;
    config.networking_enabled = shared.networking_enabled;
    config.resync = Duration::from_secs(args.resync_seconds.max(1));
    config.cluster_labels = args.cluster_labels;
    config.limits_enforcement = match args.default_limits_enforcement.as_str() {
        "Hard" => LimitsEnforcement::Hard,
        "None" => LimitsEnforcement::None,
        _ => LimitsEnforcement::Soft,
    };
    controller::run(
        shared.client,
        negotiator,
        config,
        shared.shutdown.wait_owned(),
    )
    .await
    .context("authentication controllers")
}
