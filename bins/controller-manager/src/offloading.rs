//! The offloading module: on the consumer, the NamespaceOffloading controller, one virtual
//! kubelet process per VirtualNode, and the offloading webhooks (pod mutation,
//! NamespaceOffloading validation) over TLS; on the provider, the NamespaceMap controller
//! (twin namespaces), the ShadowPod controller (the real pods) and the ShadowEndpointSlice
//! controller (the consumers' endpoints of reflected Services).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use liqo_core::webhook::ServingCertificate;
use liqo_reflect::offloading::admission::{self, WebhookOptions};
use liqo_reflect::offloading::{namespace_map, namespace_offloading, shadow_endpointslice};
use liqo_reflect::shadowpod;
use liqo_reflect::virtual_kubelet::controller as vk_controller;
use liqo_reflect::virtual_kubelet::launcher::ProcessLauncher;

use crate::Shared;

/// Whether accepted ResourceSlices get a VirtualNode.
pub(crate) fn creates_virtual_nodes(enabled: bool) -> bool {
    enabled
}

/// Flags of the offloading module.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Offloading")]
pub(crate) struct OffloadingArgs {
    /// Where the webhooks listen (port 0: any free port, registered with the API server).
    #[arg(long, default_value = "127.0.0.1:0")]
    webhook_address: SocketAddr,
    /// The https:// URL the API server calls the webhooks at (default: the listen address;
    /// set it when the API server reaches this process through a Service).
    #[arg(long)]
    webhook_url: Option<String>,
    /// What the API server does when the webhooks cannot be reached: Fail (upstream's
    /// default) or Ignore.
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    webhook_failure_policy: String,
    /// Do not serve nor register the webhooks.
    #[arg(long)]
    disable_webhooks: bool,
    /// The virtual kubelet binary started for each VirtualNode (default: liqo-virtual-kubelet
    /// next to this binary).
    #[arg(long)]
    virtual_kubelet_binary: Option<PathBuf>,
    /// Directory for the virtual kubelets' logs (default: inherit stderr).
    #[arg(long)]
    virtual_kubelet_log_dir: Option<PathBuf>,
    /// Extra arguments for every virtual kubelet (repeatable), e.g.
    /// --virtual-kubelet-arg=--node-ping-interval=5s.
    #[arg(long = "virtual-kubelet-arg", allow_hyphen_values = true)]
    virtual_kubelet_args: Vec<String>,
    /// The Pod Security level consumers' twin namespaces enforce on this provider: baseline
    /// (default), restricted, or privileged (trusted consumers only). The ShadowPod webhook
    /// refuses what the level forbids, and Kubernetes' Pod Security admission checks the pods.
    #[arg(long, default_value = "baseline", value_parser = ["privileged", "baseline", "restricted"])]
    tenant_pod_security: String,
    /// Pod Security levels per ResourceSlice class, `class=level,...` (e.g.
    /// `trusted=privileged`): a tenant whose slices are all of listed classes gets the
    /// strictest of their levels instead of --tenant-pod-security.
    #[arg(
        long,
        value_name = "CLASS=LEVEL,...",
        default_value = "",
        hide_default_value = true
    )]
    tenant_pod_security_by_class: String,
    /// Run the virtual kubelets with this process's credentials instead of a least-privilege
    /// ServiceAccount of their own (ClusterRole liqo-virtual-kubelet-local) each.
    #[arg(long)]
    virtual_kubelet_shared_credentials: bool,
    /// Concurrent reconciles of the ShadowPod controller (upstream: 10; more keeps up with
    /// bursts of offloaded pods, see docs/performance.md).
    #[arg(long, default_value_t = liqo_reflect::shadowpod::DEFAULT_WORKERS)]
    shadowpod_workers: u16,
}

/// Runs the offloading controllers (and the webhooks) until shutdown.
pub(crate) async fn run(
    shared: Shared,
    args: OffloadingArgs,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<()> {
    let client = shared.client.clone();
    let shutdown = || shared.shutdown.wait_owned();
    // What consumers' virtual kubelets may do in the twin namespaces of this cluster.
    namespace_map::ensure_remote_cluster_role(&client)
        .await
        .context("offloading RBAC")?;

    // Provider side.
    let shadow_config = shadowpod::Config {
        workers: args.shadowpod_workers,
        ..shadowpod::Config::default()
    };
    let shadowpods = shadowpod::run(client.clone(), shadow_config, shutdown());
    let level = liqo_reflect::offloading::pod_policy::Level::parse(&args.tenant_pod_security)
        .map_err(|e| anyhow::anyhow!("--tenant-pod-security: {e}"))?;
    let mut by_class = std::collections::BTreeMap::new();
    for item in args
        .tenant_pod_security_by_class
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (class, value) = item.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--tenant-pod-security-by-class: \"{item}\" is not class=level")
        })?;
        let value = liqo_reflect::offloading::pod_policy::Level::parse(value)
            .map_err(|e| anyhow::anyhow!("--tenant-pod-security-by-class {class}: {e}"))?;
        by_class.insert(class.to_owned(), value);
    }
    let namespace_maps = namespace_map::run(
        client.clone(),
        namespace_map::Config::with_pod_security(level, by_class),
        shutdown(),
    );
    let shadow_slices = shadow_endpointslice::run(
        client.clone(),
        shadow_endpointslice::Config::default(),
        shutdown(),
    );

    // Consumer side.
    let offloadings = namespace_offloading::run(
        client.clone(),
        namespace_offloading::Config {
            local_cluster_id: shared.cluster_id.clone(),
        },
        shutdown(),
    );
    let program = match args.virtual_kubelet_binary {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating this binary")?
            .with_file_name("liqo-virtual-kubelet"),
    };
    // Each kubelet on its own port of this host, advertised on its Node.
    let mut base = vec!["--listen-port".to_owned(), "0".to_owned()];
    if let Some(kc) = &kubeconfig {
        base.extend(["--kubeconfig".to_owned(), kc.display().to_string()]);
    }
    let mut launcher = ProcessLauncher::new(program, base);
    if let Some(dir) = args.virtual_kubelet_log_dir {
        launcher = launcher.log_dir(dir);
    }
    let virtual_nodes = vk_controller::run(
        client.clone(),
        Arc::new(launcher),
        vk_controller::Config {
            home_cluster_id: shared.cluster_id.clone(),
            extra_args: args.virtual_kubelet_args,
            resync: Duration::from_secs(10),
            own_identity: !args.virtual_kubelet_shared_credentials,
        },
        shutdown(),
    );

    let webhooks = async {
        if args.disable_webhooks {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(args.webhook_address)
            .await
            .with_context(|| format!("listening on --webhook-address {}", args.webhook_address))?;
        let bound = listener.local_addr().context("webhook listener address")?;
        let url = args
            .webhook_url
            .clone()
            .unwrap_or_else(|| format!("https://{bound}"));
        let mut options = WebhookOptions::new(
            url.parse()
                .map_err(|e: String| anyhow::anyhow!("--webhook-url: {e}"))?,
        );
        options.failure_policy = args.webhook_failure_policy.clone();
        let (dns, ips) = admission::certificate_names(&options);
        let cert = ServingCertificate::self_signed(&dns, &ips).context("webhook certificate")?;
        admission::register(&client, &options, &cert)
            .await
            .context("registering the offloading webhooks")?;
        tracing::info!(%url, "offloading webhooks registered");
        admission::serve(client.clone(), listener, &cert, shutdown())
            .await
            .context("offloading webhooks")
    };

    let (a, b, c, d, e, f) = tokio::join!(
        shadowpods,
        namespace_maps,
        offloadings,
        virtual_nodes,
        webhooks,
        shadow_slices
    );
    a.context("ShadowPod controller")?;
    b.context("NamespaceMap controller")?;
    c.context("NamespaceOffloading controller")?;
    d.context("VirtualNode controller")?;
    f.context("ShadowEndpointSlice controller")?;
    e
}
