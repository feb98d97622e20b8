//! The liqo-rs virtual kubelet as a library: [`Args`] (its command line) and
//! [`run`]`(args, customize)`, where `customize` adds reflectors to the built-in ones (a
//! [`Forge`](liqo_reflect::Forge) for one more kind, or any
//! [`Reflector`](liqo_reflect::Reflector)). The shipped binary is a main of a few lines:
//!
//! ```no_run
//! use clap::Parser as _;
//!
//! # async fn main_() -> anyhow::Result<()> {
//! liqo_virtual_kubelet::run(liqo_virtual_kubelet::Args::parse(), |reflectors| reflectors).await
//! # }
//! ```
#![warn(missing_docs)]

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::Parser;
use ipnetwork::IpNetwork;
use liqo_core::ids::ClusterId;
use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_reflect::ReflectionManagerBuilder;
use liqo_reflect::virtual_kubelet::{Config, run_with};

/// The liqo-rs virtual kubelet: one per VirtualNode, offloads pods to a provider cluster.
///
/// Registers the Node named after the VirtualNode (capacity from its resource quota, the
/// virtual-node taint, a Lease heartbeat, Ready while the provider's API server answers),
/// turns the pods scheduled on it into ShadowPods in the provider and reflects their status
/// back, and reflects Services, EndpointSlices, ConfigMaps, Secrets, Ingresses, PVCs,
/// ServiceAccount tokens and Events of the offloaded namespaces.
///
/// Example:
///   liqo-virtual-kubelet --kubeconfig ~/.kube/config --virtual-node-name milan \
///     --tenant-namespace liqo-tenant-milan --home-cluster-id rome --foreign-cluster-id milan \
///     --remote-pod-cidr 10.0.0.0/16 --remote-pod-cidr-remap 10.71.0.0/16
#[derive(Debug, Parser)]
#[allow(missing_docs)] // the flags are documented for --help
#[command(
    name = "liqo-virtual-kubelet",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    args_override_self = true
)]
pub struct Args {
    /// Kubeconfig of the home cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Authenticate to the home cluster with the bearer token in this file (re-read when it
    /// changes) instead of the kubeconfig's user; the kubeconfig still gives the server and
    /// its CA. The controller-manager passes a token of the kubelet's own ServiceAccount.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Name of the VirtualNode (and of the Node).
    #[arg(long, alias = "nodename", env = "VIRTUALNODE_NAME")]
    virtual_node_name: String,
    /// Namespace of the VirtualNode, its kubeconfig Secret and the NamespaceMaps.
    #[arg(long)]
    tenant_namespace: String,
    /// Id of this (home) cluster.
    #[arg(long)]
    home_cluster_id: ClusterId,
    /// Id of the provider cluster.
    #[arg(long)]
    foreign_cluster_id: ClusterId,
    /// Secret (in the tenant namespace, key `kubeconfig`) with the provider's credentials
    /// (default: the VirtualNode's spec.kubeconfigSecretRef).
    #[arg(long)]
    foreign_kubeconfig_secret_name: Option<String>,
    /// Address of this virtual kubelet: Node InternalIP and host IP of offloaded pods.
    #[arg(long, env = "POD_IP", default_value = "127.0.0.1")]
    node_ip: IpAddr,
    /// Port of the kubelet API, advertised on the Node (daemonEndpoints); 0 picks a free one
    /// (several virtual kubelets on one address, as the process launcher runs them).
    #[arg(long, default_value_t = 10250)]
    listen_port: u16,
    /// The provider's pod CIDR (as the provider sees it).
    #[arg(long)]
    remote_pod_cidr: Option<IpNetwork>,
    /// The CIDR the provider's pod CIDR is remapped to locally (default: not remapped).
    #[arg(long)]
    remote_pod_cidr_remap: Option<IpNetwork>,
    /// The provider's external CIDR.
    #[arg(long)]
    remote_external_cidr: Option<IpNetwork>,
    /// The CIDR the provider's external CIDR is remapped to locally.
    #[arg(long)]
    remote_external_cidr_remap: Option<IpNetwork>,
    /// This cluster's pod CIDR (for reflected EndpointSlices).
    #[arg(long)]
    home_pod_cidr: Option<IpNetwork>,
    /// The CIDR the provider remapped this cluster's pod CIDR to.
    #[arg(long)]
    home_pod_cidr_remap: Option<IpNetwork>,
    /// Interval between health checks of the provider's API server (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    node_ping_interval: Duration,
    /// Timeout of one health check.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    node_ping_timeout: Duration,
    /// Consecutive failed health checks that make the Node NotReady.
    #[arg(long, default_value_t = 3)]
    node_health_failure_threshold: u32,
    /// Duration of the node Lease in kube-node-lease (renewed every quarter of it).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    node_lease_duration: Duration,
    /// Maximum interval between two writes of the Node status.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    node_status_update_interval: Duration,
    /// Workers of the pod reflector per offloaded namespace.
    #[arg(long, default_value_t = 50)]
    pod_workers: usize,
    /// Whether to create and maintain the Node.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    create_node: bool,
    /// Extra labels of the Node (key=value, comma separated).
    #[arg(long, value_delimiter = ',')]
    node_extra_labels: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 1m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

fn mapping(
    real: Option<IpNetwork>,
    remap: Option<IpNetwork>,
    flag: &str,
) -> anyhow::Result<Option<Mapping>> {
    match (real, remap) {
        (None, None) => Ok(None),
        (None, Some(_)) => bail!("--{flag}-remap needs --{flag}"),
        (Some(real), None) => Ok(Some(
            Mapping::identity(real).with_context(|| format!("--{flag}"))?,
        )),
        (Some(real), Some(remap)) => Ok(Some(
            Mapping::new(real, remap).with_context(|| format!("--{flag} and --{flag}-remap"))?,
        )),
    }
}

/// Runs the virtual kubelet until SIGTERM or SIGINT, with the reflectors `customize` adds
/// to the built-in ones.
///
/// # Errors
///
/// When the flags are inconsistent, the home cluster cannot be reached, or the VirtualNode
/// or the provider's credentials are missing; the error says which.
pub async fn run(
    args: Args,
    customize: impl FnOnce(ReflectionManagerBuilder) -> ReflectionManagerBuilder,
) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut extra_labels = BTreeMap::new();
    for label in &args.node_extra_labels {
        let Some((k, v)) = label.split_once('=') else {
            bail!("--node-extra-labels: {label:?} is not key=value");
        };
        extra_labels.insert(k.to_owned(), v.to_owned());
    }
    let remote_cidrs = RemoteCidrs {
        pod: mapping(
            args.remote_pod_cidr,
            args.remote_pod_cidr_remap,
            "remote-pod-cidr",
        )?
        .into_iter()
        .collect(),
        external: mapping(
            args.remote_external_cidr,
            args.remote_external_cidr_remap,
            "remote-external-cidr",
        )?
        .into_iter()
        .collect(),
    };
    let home_cidrs = RemoteCidrs {
        pod: mapping(
            args.home_pod_cidr,
            args.home_pod_cidr_remap,
            "home-pod-cidr",
        )?
        .into_iter()
        .collect(),
        external: Vec::new(),
    };
    let mut kube_config = liqo_core::runtime::kube_config(args.kubeconfig.as_deref()).await?;
    if let Some(path) = &args.token_file {
        kube_config.auth_info = kube::config::AuthInfo {
            token_file: Some(path.display().to_string()),
            ..kube::config::AuthInfo::default()
        };
    }
    let client = kube::Client::try_from(kube_config).context("building the Kubernetes client")?;
    let mut config = Config::new(
        args.virtual_node_name,
        args.tenant_namespace,
        args.home_cluster_id,
        args.foreign_cluster_id,
    );
    config.foreign_kubeconfig_secret_name = args.foreign_kubeconfig_secret_name;
    config.node_ip = args.node_ip;
    config.kubelet_port = args.listen_port;
    config.remote_cidrs = remote_cidrs;
    config.home_cidrs = home_cidrs;
    config.ping_interval = args.node_ping_interval;
    config.ping_timeout = args.node_ping_timeout;
    config.failure_threshold = args.node_health_failure_threshold;
    config.lease_duration = args.node_lease_duration;
    config.status_update_interval = args.node_status_update_interval;
    config.pod_workers = args.pod_workers;
    config.create_node = args.create_node;
    config.extra_labels = extra_labels;
    run_with(
        client,
        config,
        customize,
        liqo_core::runtime::shutdown_signal(),
    )
    .await
    .context("virtual kubelet")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
