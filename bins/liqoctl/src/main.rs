//! liqoctl: peer Kubernetes clusters with liqo-rs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use liqo_core::ids::ClusterId;

mod cluster;
mod generate;
mod info;
mod network;
mod offload;
mod peer;
mod progress;
mod unpeer;

use cluster::Target;
use progress::{Progress, parse_duration};

/// liqoctl: peer Kubernetes clusters with liqo-rs.
///
/// The local cluster is the one of --kubeconfig/--context (default: $KUBECONFIG or
/// ~/.kube/config); two-cluster commands take the other one with --remote-kubeconfig and
/// --remote-context. Both clusters run liqo-controller-manager.
///
/// Examples:
///   liqoctl peer --remote-kubeconfig milan.kubeconfig --skip-networking
///   liqoctl info
///   liqoctl unpeer --remote-kubeconfig milan.kubeconfig
#[derive(Debug, Parser)]
#[command(name = "liqoctl", version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Kubeconfig of the local cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context of the local kubeconfig to use (default: its current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace where Liqo runs, on both clusters.
    #[arg(long, global = true, default_value = "liqo")]
    liqo_namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Peer the local cluster (consumer) with the remote one (provider).
    ///
    /// Sets up, in order: the network (Configuration exchange, gateway server on the provider,
    /// gateway client on the consumer, public keys, tunnel), authentication (nonce signed by
    /// the consumer, Tenant verified by the provider, control-plane Identity) and offloading
    /// (ResourceSlice granted by the provider, VirtualNode). Every step prints a line; running
    /// it again is safe. If a fresh peering fails, what it created is removed on both sides.
    ///
    /// Examples:
    ///   # rome consumes milan's resources (provider defaults: 4 CPUs, 8Gi, 110 pods)
    ///   liqoctl peer --kubeconfig rome.kubeconfig --remote-kubeconfig milan.kubeconfig
    ///   # ask for specific resources, without networking (control plane only)
    ///   liqoctl peer --remote-kubeconfig milan.kubeconfig --cpu 2 --memory 4Gi --skip-networking
    ///   # both clusters consume each other's resources
    ///   liqoctl peer --remote-kubeconfig milan.kubeconfig --bidirectional
    #[command(verbatim_doc_comment)]
    Peer(PeerArgs),
    /// Remove a peering: what `liqoctl peer` created on both clusters.
    ///
    /// Deletes the ResourceSlices, VirtualNodes and Identities on the consumer, the Tenant on
    /// the provider, the network resources and ForeignClusters (unless the provider also
    /// consumes from the consumer), and the tenant namespaces (unless --keep-namespaces).
    ///
    /// Examples:
    ///   liqoctl unpeer --remote-kubeconfig milan.kubeconfig
    ///   liqoctl unpeer --remote-kubeconfig milan.kubeconfig --keep-namespaces
    ///   # milan is gone for good: clean up rome only
    ///   liqoctl unpeer --force --remote-cluster-id milan
    #[command(verbatim_doc_comment)]
    Unpeer(UnpeerArgs),
    /// Show the local cluster and its peers, or one peer in detail.
    ///
    /// Examples:
    ///   liqoctl info
    ///   liqoctl info peer milan
    #[command(verbatim_doc_comment)]
    Info {
        #[command(subcommand)]
        what: Option<InfoWhat>,
    },
    /// Generate manifests or credentials.
    #[command(subcommand)]
    Generate(Generate),
    /// Offload a namespace: extend it to the peered clusters its selector picks.
    ///
    /// Creates the NamespaceOffloading `offloading` of the namespace and waits until the
    /// remote namespaces are ready. Pods of the namespace may then be scheduled on the
    /// virtual nodes (--pod-offloading-strategy); Services, ConfigMaps, Secrets and more are
    /// reflected. Running it again with other flags updates the policy (the mapping strategy
    /// cannot change).
    ///
    /// Examples:
    ///   liqoctl offload namespace liqo-demo
    ///   liqoctl offload namespace liqo-demo --namespace-mapping-strategy EnforceSameName
    ///   # only to clusters in the south region, pods only remote
    ///   liqoctl offload namespace app --selector 'topology.liqo.io/region=south' \
    ///     --pod-offloading-strategy Remote
    ///   # the manifest, for GitOps
    ///   liqoctl offload namespace liqo-demo --output yaml
    #[command(verbatim_doc_comment)]
    Offload {
        #[command(subcommand)]
        what: OffloadWhat,
    },
    /// Stop offloading a namespace: the remote namespaces are deleted and the offloaded pods
    /// are rescheduled locally.
    ///
    /// Examples:
    ///   liqoctl unoffload namespace liqo-demo
    #[command(verbatim_doc_comment)]
    Unoffload {
        #[command(subcommand)]
        what: UnoffloadWhat,
    },
    /// Print the version of liqoctl and of liqo-rs on the local (and remote) cluster.
    ///
    /// Examples:
    ///   liqoctl version
    ///   liqoctl version --remote-kubeconfig milan.kubeconfig
    #[command(verbatim_doc_comment)]
    Version {
        /// Print only the liqoctl version.
        #[arg(long)]
        client: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// The other cluster, for the commands that work on two.
#[derive(Debug, Clone, clap::Args)]
struct RemoteArgs {
    /// Kubeconfig of the remote cluster (the provider for `peer`).
    #[arg(long)]
    remote_kubeconfig: Option<PathBuf>,
    /// Context of the remote kubeconfig to use.
    #[arg(long)]
    remote_context: Option<String>,
}

impl Command {
    /// The remote-cluster flags of the command, for those that have them.
    fn remote(&self) -> Option<&RemoteArgs> {
        match self {
            Self::Peer(p) => Some(&p.remote),
            Self::Unpeer(u) => Some(&u.remote),
            Self::Version { remote, .. } => Some(remote),
            _ => None,
        }
    }
}

#[derive(Debug, clap::Args)]
struct PeerArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Also peer in the other direction (the remote cluster consumes the local one).
    #[arg(long)]
    bidirectional: bool,
    /// CPU to ask the provider for (default: what the provider grants by default).
    #[arg(long)]
    cpu: Option<String>,
    /// Memory to ask the provider for (e.g. 4Gi).
    #[arg(long)]
    memory: Option<String>,
    /// Pods to ask the provider for.
    #[arg(long)]
    pods: Option<String>,
    /// Do not set up the network (no gateways needed; pods cannot talk across clusters).
    #[arg(long)]
    skip_networking: bool,
    /// Maximum time of each wait (e.g. 90s, 2m).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct UnpeerArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Keep the tenant namespaces (and whatever else they contain).
    #[arg(long)]
    keep_namespaces: bool,
    /// The remote cluster is gone: clean up the local cluster only, removing finalizers that
    /// wait for it. Needs --remote-cluster-id when the remote kubeconfig is not usable.
    #[arg(long)]
    force: bool,
    /// Id of the remote cluster (with --force, instead of --remote-kubeconfig).
    #[arg(long)]
    remote_cluster_id: Option<ClusterId>,
    /// Maximum time of each wait (e.g. 90s, 2m).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum OffloadWhat {
    /// Offload a namespace: create its NamespaceOffloading and wait for the remote namespaces.
    ///
    /// A failure (no cluster selected, no remote namespace created) puts back what was there
    /// before. Running it again with other flags updates the policy.
    ///
    /// Examples:
    ///   liqoctl offload namespace liqo-demo
    ///   liqoctl offload namespace liqo-demo --namespace-mapping-strategy EnforceSameName
    ///   # only to clusters in the south region, pods only remote
    ///   liqoctl offload namespace app --selector 'topology.liqo.io/region=south' \
    ///     --pod-offloading-strategy Remote
    ///   # the manifest, for GitOps
    ///   liqoctl offload namespace liqo-demo --output yaml
    #[command(verbatim_doc_comment)]
    Namespace(offload::OffloadArgs),
}

#[derive(Debug, Subcommand)]
enum UnoffloadWhat {
    /// Stop offloading a namespace: its remote namespaces are deleted, and its offloaded pods
    /// are deleted so that their controllers recreate them on local nodes.
    ///
    /// Examples:
    ///   liqoctl unoffload namespace liqo-demo
    ///   liqoctl unoffload namespace liqo-demo --timeout 5m
    #[command(verbatim_doc_comment)]
    Namespace {
        /// The namespace.
        namespace: String,
        /// Maximum time to wait for the remote namespaces to go.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum InfoWhat {
    /// Details of one peer: role, API server, versions, modules, ResourceSlices, VirtualNodes.
    ///
    /// Examples:
    ///   liqoctl info peer milan
    #[command(verbatim_doc_comment)]
    Peer {
        /// The peer's cluster id.
        cluster_id: ClusterId,
    },
}

#[derive(Debug, Subcommand)]
enum Generate {
    /// Create a least-privilege user on this (provider) cluster for one consumer and print
    /// its kubeconfig: give it to the consumer's administrator for
    /// `liqoctl peer --remote-kubeconfig`.
    ///
    /// The user (`liqo-peer-user-<consumer>-<random>`, certificate signed by this cluster's
    /// CSR API) may only do what peering needs: Secrets, Tenants and network resources in the
    /// consumer's tenant namespace, and reading Liqo's ConfigMaps and Networks.
    ///
    /// Examples:
    ///   liqoctl generate peering-user --consumer-cluster-id rome > milan-for-rome.kubeconfig
    #[command(verbatim_doc_comment)]
    PeeringUser {
        /// The cluster id of the consumer that will use the kubeconfig.
        #[arg(long)]
        consumer_cluster_id: ClusterId,
    },
}

fn resources(args: &PeerArgs) -> anyhow::Result<BTreeMap<String, Quantity>> {
    let mut out = BTreeMap::new();
    for (name, value) in [
        ("cpu", &args.cpu),
        ("memory", &args.memory),
        ("pods", &args.pods),
    ] {
        if let Some(v) = value {
            liqo_auth::grant::parse_quantity(v)
                .with_context(|| format!("--{name} {v:?} is not a Kubernetes quantity"))?;
            out.insert(name.to_owned(), Quantity(v.clone()));
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", progress::render(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let local = Target {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        role: "local",
    };
    let remote = args.command.remote().and_then(|r| {
        r.remote_kubeconfig.clone().map(|k| Target {
            kubeconfig: Some(k),
            context: r.remote_context.clone(),
            role: "remote",
        })
    });
    let ns = args.liqo_namespace.as_str();
    let need_remote = || {
        remote.clone().context(
            "this command needs the other cluster: pass --remote-kubeconfig (and \
             --remote-context)",
        )
    };
    match args.command {
        Command::Peer(p) => {
            let resources = resources(&p)?;
            let progress = Progress::new(false);
            let remote = need_remote()?;
            let (consumer, provider) = progress
                .step("clusters reachable and running liqo-rs", async {
                    let (a, b) =
                        futures::join!(cluster::connect(&local, ns), cluster::connect(&remote, ns));
                    Ok((a?, b?))
                })
                .await?;
            if consumer.id == provider.id {
                anyhow::bail!(
                    "both clusters have cluster id {:?}: cluster ids must be unique; restart \
                     liqo-controller-manager of one of them with another --cluster-id (after \
                     deleting its ConfigMap {ns}/liqo-clusterid-configmap)",
                    consumer.id.as_str()
                );
            }
            progress.info(format!(
                "consumer {} ({}), provider {} ({})",
                consumer.id, consumer.server, provider.id, provider.server
            ));
            let opts = peer::PeerOptions {
                resources,
                skip_networking: p.skip_networking,
                timeout: p.timeout,
            };
            peer::peer(&progress, &consumer, &provider, &opts).await?;
            if p.bidirectional {
                progress.info(format!(
                    "reverse direction: {} consumes {}",
                    provider.id, consumer.id
                ));
                // The network is shared by both directions.
                let reverse = peer::PeerOptions {
                    skip_networking: true,
                    ..opts
                };
                peer::peer(&progress, &provider, &consumer, &reverse).await?;
            }
            println!(
                "Peering {} -> {} established in {:.1}s",
                consumer.id,
                provider.id,
                progress.elapsed().as_secs_f64()
            );
        }
        Command::Unpeer(u) => {
            let progress = Progress::new(false);
            let consumer = cluster::connect(&local, ns).await?;
            let opts = unpeer::UnpeerOptions {
                keep_namespaces: u.keep_namespaces,
                force: u.force,
                timeout: u.timeout,
            };
            let provider = match &remote {
                Some(r) => match cluster::connect(r, ns).await {
                    Ok(c) => Some(c),
                    Err(e) if u.force => {
                        progress.info(format!(
                            "remote cluster not usable ({}): local cleanup only",
                            progress::render(&e)
                        ));
                        None
                    }
                    Err(e) => {
                        return Err(e.context(
                            "cannot reach the remote cluster; if it is gone for good, use \
                             --force --remote-cluster-id <id>",
                        ));
                    }
                },
                None => None,
            };
            let peer_id = match (&provider, &u.remote_cluster_id) {
                (Some(p), _) => p.id.clone(),
                (None, Some(id)) if u.force => id.clone(),
                _ => anyhow::bail!(
                    "pass --remote-kubeconfig, or --force --remote-cluster-id <id> when the \
                     remote cluster is gone"
                ),
            };
            if peer_id == consumer.id {
                anyhow::bail!("the remote cluster id is the local one ({peer_id})");
            }
            unpeer::unpeer_ids(&progress, &consumer, provider.as_ref(), &peer_id, &opts).await?;
            println!("Unpeered {} from {peer_id}", consumer.id);
        }
        Command::Info { what } => {
            let local = cluster::connect(&local, ns).await?;
            let out = match what {
                None => info::info(&local).await?,
                Some(InfoWhat::Peer { cluster_id }) => info::info_peer(&local, &cluster_id).await?,
            };
            print!("{out}");
        }
        Command::Generate(Generate::PeeringUser {
            consumer_cluster_id,
        }) => {
            let provider = cluster::connect(&local, ns).await?;
            print!(
                "{}",
                generate::peering_user(&provider, &consumer_cluster_id).await?
            );
        }
        Command::Offload {
            what: OffloadWhat::Namespace(o),
        } => match o.output.as_deref() {
            Some(format) => {
                let manifest = offload::manifest(&o)?;
                if format == "json" {
                    println!("{}", serde_json::to_string_pretty(&manifest)?);
                } else {
                    print!("{}", serde_yaml::to_string(&manifest)?);
                }
            }
            None => {
                let local = cluster::connect(&local, ns).await?;
                offload::offload(&local, &o).await?;
            }
        },
        Command::Unoffload {
            what: UnoffloadWhat::Namespace { namespace, timeout },
        } => {
            let local = cluster::connect(&local, ns).await?;
            offload::unoffload(&local, &namespace, timeout).await?;
        }
        Command::Version { client, .. } => {
            println!("liqoctl: {}", env!("CARGO_PKG_VERSION"));
            if client {
                return Ok(());
            }
            let mut failed = false;
            let mut targets = vec![local];
            targets.extend(remote);
            for t in targets {
                match cluster::connect(&t, ns).await {
                    Ok(c) => {
                        let v = c.version.clone().unwrap_or_else(|| "unknown".into());
                        println!("{} cluster {} ({}): liqo-rs {v}", t.role, c.id, c.server);
                        if v != env!("CARGO_PKG_VERSION") {
                            eprintln!(
                                "warning: liqoctl {} and liqo-rs {v} on {} differ",
                                env!("CARGO_PKG_VERSION"),
                                c.id
                            );
                        }
                    }
                    Err(e) => {
                        println!("{} cluster: {}", t.role, progress::render(&e));
                        failed = true;
                    }
                }
            }
            if failed {
                anyhow::bail!("could not read the liqo-rs version of every cluster");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "liqoctl",
            "peer",
            "--remote-kubeconfig",
            "x",
            "--cpu",
            "2",
            "--timeout",
            "2m",
            "--bidirectional",
        ])
        .unwrap();
        let Command::Peer(p) = a.command else {
            panic!("not peer")
        };
        assert_eq!(p.timeout, Duration::from_secs(120));
        assert_eq!(resources(&p).unwrap()["cpu"].0, "2");
        let bad = Args::try_parse_from(["liqoctl", "peer", "--cpu", "lots"]).unwrap();
        let Command::Peer(p) = bad.command else {
            panic!("not peer")
        };
        assert!(resources(&p).is_err());
        assert!(Args::try_parse_from(["liqoctl", "info", "peer", "Bad_Id"]).is_err());
    }
}
