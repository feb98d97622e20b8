//! `liqo-testenv`: start local Kubernetes clusters made of real processes and keep them up.

use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use liqo_testenv::{Cluster, ClusterConfig, NodeCapacity};

/// Local Kubernetes clusters for liqo-rs development: etcd, kube-apiserver,
/// kube-controller-manager, kube-scheduler and kwok fake nodes, as processes on 127.0.0.1,
/// and optionally real nodes (--real-nodes: kubelet, containerd, CNI, kube-proxy, CoreDNS).
///
/// Binaries come from hack/k8s-binaries.sh (or LIQO_K8S_BIN). Logs go to
/// target/testenv/<cluster>/.
///
/// Examples:
///   liqo-testenv up --clusters 2
///   liqo-testenv up --names rome,milan --nodes 1 --env-file target/testenv/clusters.env
///   sudo liqo-testenv up --clusters 2 --real-nodes 1     # real kubelets and containers
#[derive(Debug, Parser)]
#[command(
    name = "liqo-testenv",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start clusters, print their kubeconfig paths, and keep them up until Ctrl-C.
    ///
    /// Examples:
    ///   liqo-testenv up --clusters 2
    ///   kubectl --kubeconfig target/testenv/rome/kubeconfig get nodes
    #[command(verbatim_doc_comment)]
    Up(UpArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Number of clusters. They are named after Italian cities: rome, milan, naples, turin...
    #[arg(long, default_value_t = 1)]
    clusters: usize,
    /// Explicit cluster names, comma separated (overrides --clusters).
    #[arg(long, value_delimiter = ',')]
    names: Vec<String>,
    /// Fake (kwok) nodes per cluster.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Real nodes per cluster (kubelet, containerd, bridge CNI, kube-proxy; CoreDNS runs on
    /// them). Needs root and the node binaries of hack/k8s-binaries.sh.
    #[arg(long, default_value_t = 0)]
    real_nodes: usize,
    /// CPU of each fake node.
    #[arg(long, default_value = "16")]
    node_cpu: String,
    /// Memory of each fake node.
    #[arg(long, default_value = "64Gi")]
    node_memory: String,
    /// Give every cluster this same pod CIDR (default: a distinct /16 per cluster).
    #[arg(long)]
    pod_cidr: Option<ipnetwork::Ipv4Network>,
    /// Give every cluster this same service CIDR (default: a distinct /16 per cluster).
    #[arg(long)]
    service_cidr: Option<ipnetwork::Ipv4Network>,
    /// Also write one `name=kubeconfig-path` line per cluster to this file, for scripts.
    #[arg(long)]
    env_file: Option<std::path::PathBuf>,
}

/// `kubectl` if it is on the PATH, else the one hack/k8s-binaries.sh built.
fn kubectl() -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("kubectl").is_file()));
    match liqo_testenv::Binaries::discover() {
        Ok(bins) if !on_path => bins.path("kubectl").display().to_string(),
        _ => "kubectl".to_owned(),
    }
}

const CITIES: [&str; 8] = [
    "rome", "milan", "naples", "turin", "florence", "venice", "genoa", "bari",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "liqo_testenv=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Args::parse().command {
        Command::Up(args) => up(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let names: Vec<String> = if args.names.is_empty() {
        anyhow::ensure!(
            (1..=CITIES.len()).contains(&args.clusters),
            "--clusters must be between 1 and {}; use --names for more",
            CITIES.len()
        );
        CITIES[..args.clusters]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        args.names.clone()
    };
    let configs = names
        .iter()
        .map(|name| {
            let mut config = ClusterConfig::new(name.clone())
                .nodes(args.nodes)
                .real_nodes(args.real_nodes)
                .node_capacity(NodeCapacity {
                    cpu: args.node_cpu.clone(),
                    memory: args.node_memory.clone(),
                    ..NodeCapacity::default()
                });
            if let Some(cidr) = args.pod_cidr {
                config = config.pod_cidr(cidr);
            }
            if let Some(cidr) = args.service_cidr {
                config = config.service_cidr(cidr);
            }
            config
        })
        .collect();
    eprintln!(
        "starting {} cluster(s): {} ...",
        names.len(),
        names.join(", ")
    );
    let started = Instant::now();
    let clusters = Cluster::start_all(configs)
        .await
        .context("starting the clusters")?;
    eprintln!("ready in {:.1} s\n", started.elapsed().as_secs_f64());

    let mut env_lines = String::new();
    for cluster in &clusters {
        println!(
            "{:<8} kubeconfig: {}\n         pod CIDR {}, service CIDR {}, API server {}",
            cluster.name(),
            cluster.kubeconfig_path().display(),
            cluster.pod_cidr(),
            cluster.service_cidr(),
            cluster.apiserver_url()
        );
        env_lines.push_str(&format!(
            "{}={}\n",
            cluster.name(),
            cluster.kubeconfig_path().display()
        ));
    }
    if let Some(first) = clusters.first() {
        let kc = first.kubeconfig_path().display();
        let kubectl = kubectl();
        println!("\nTry:\n  {kubectl} --kubeconfig {kc} get nodes -o wide");
        println!("  {kubectl} --kubeconfig {kc} create deployment demo --image=nginx --replicas=3");
        println!("  {kubectl} --kubeconfig {kc} get pods -o wide");
        println!(
            "\nLogs: {}",
            first.dir().parent().unwrap_or(first.dir()).display()
        );
    }
    if let Some(path) = &args.env_file {
        std::fs::write(path, env_lines).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("\nPress Ctrl-C to stop the clusters.");
    liqo_core::runtime::shutdown_signal().await;
    eprintln!("stopping...");
    drop(clusters);
    eprintln!("all clusters stopped");
    Ok(())
}
