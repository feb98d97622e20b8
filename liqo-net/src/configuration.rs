//! The `Configuration` controller of the networking module: it turns the peer's real CIDRs
//! (`spec.remote.cidr`) into remapped ones (`status.remote.cidr`) through the IPAM, and
//! fills in the local CIDRs (`spec.local.cidr`) the gateways need.
//!
//! For every remote CIDR it keeps a `Network <configuration>-<pod|external>-<cidr>` in the
//! Configuration's namespace (labels `configuration.liqo.io/cidr-type`,
//! `liqo.io/remote-cluster-id`; owned by the Configuration, so deleting it releases them).
//! The IPAM controller (liqo-ipam) remaps a Network whose CIDR collides with one in use and
//! writes the result to its status; this controller copies the results, in order, to
//! `status.remote.cidr` and sets the `NetworkCIDRsConfigured` condition. Local CIDRs come
//! from the networks the IPAM reserves in the Liqo namespace (`pod-cidr*` and
//! `external-cidr`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use ipnetwork::IpNetwork;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt as _};
use liqo_core::api::ipam::v1alpha1::{Network, NetworkSpec};
use liqo_core::api::networking::v1beta1::{
    CONDITION_NETWORK_CIDRS_CONFIGURED, Cidr, ClusterConfig, ClusterConfigCidr, Configuration,
};
use liqo_core::labels;
use liqo_core::runtime::set_condition;

use crate::{Error, Result};

/// Field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "liqo-configuration-controller";

/// Options of the Configuration controller.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The namespace where the IPAM keeps the local networks (default `liqo`).
    pub liqo_namespace: String,
}

impl Options {
    /// Options for a Liqo namespace other than the default.
    #[must_use]
    pub fn new(liqo_namespace: &str) -> Self {
        Self {
            liqo_namespace: liqo_namespace.to_owned(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            liqo_namespace: "liqo".to_owned(),
        }
    }
}

struct Ctx {
    client: Client,
    options: Options,
}

/// Which of the peer's CIDRs a Network stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pod,
    External,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Pod => labels::networking::CIDR_TYPE_POD,
            Self::External => labels::networking::CIDR_TYPE_EXTERNAL,
        }
    }
}

/// The name of the Network for CIDR `cidr` of `kind` of Configuration `configuration`.
fn network_name(configuration: &str, kind: Kind, cidr: IpNetwork) -> String {
    format!(
        "{configuration}-{}-{}",
        kind.label(),
        liqo_ipam::controller::escape(cidr)
    )
}

/// Runs the controller until `shutdown` completes.
///
/// # Errors
///
/// Never in practice: reconcile errors are logged and retried with backoff.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        options,
    });
    Controller::new(
        Api::<Configuration>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Network>::all(client), watcher::Config::default())
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "configuration reconcile");
        }
    })
    .await;
    Ok(())
}

fn error_policy(cfg: Arc<Configuration>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(configuration = %cfg.name_any(), %error, "reconciling Configuration failed");
    Action::requeue(Duration::from_secs(5))
}

fn kube_err(context: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { context, source }
}

async fn reconcile(cfg: Arc<Configuration>, ctx: Arc<Ctx>) -> Result<Action> {
    if cfg.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = cfg.name_any();
    let ns = cfg.namespace().unwrap_or_default();
    let networks = Api::<Network>::namespaced(ctx.client.clone(), &ns);
    let configurations = Api::<Configuration>::namespaced(ctx.client.clone(), &ns);

    // The local CIDRs, from the networks the IPAM reserved.
    let local = local_cidrs(&ctx).await?;
    let current_local = cfg.spec.local.as_ref().and_then(|l| l.cidr.clone());
    if !local.pod.is_empty() && current_local.as_ref() != Some(&local) {
        let patch = serde_json::json!({ "spec": { "local": ClusterConfig { cidr: Some(local) } } });
        configurations
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!(
                "writing spec.local of Configuration {name}"
            )))?;
    }

    let remote = cfg
        .spec
        .remote
        .as_ref()
        .and_then(|r| r.cidr.clone())
        .unwrap_or_default();
    let owner = OwnerReference {
        api_version: "networking.liqo.io/v1beta1".to_owned(),
        kind: "Configuration".to_owned(),
        name: name.clone(),
        uid: cfg.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let remote_id = cfg
        .labels()
        .get(labels::core::REMOTE_CLUSTER_ID)
        .cloned()
        .unwrap_or_default();
    let mut remapped = ClusterConfigCidr::default();
    let mut complete = !remote.pod.is_empty();
    let mut problems = Vec::new();
    for (kind, list) in [(Kind::Pod, &remote.pod), (Kind::External, &remote.external)] {
        for cidr in list {
            let parsed: IpNetwork = match cidr.as_str().parse() {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{} CIDR {cidr:?}: {e}", kind.label()));
                    complete = false;
                    continue;
                }
            };
            let net_name = network_name(&name, kind, parsed);
            let existing = networks
                .get_opt(&net_name)
                .await
                .map_err(kube_err(format!("reading Network {net_name}")))?;
            let network = match existing {
                Some(n) => n,
                None => {
                    let mut net = Network::new(
                        &net_name,
                        NetworkSpec {
                            cidr: Cidr(parsed.to_string()),
                            pre_allocated: 0,
                        },
                    );
                    net.metadata = ObjectMeta {
                        name: Some(net_name.clone()),
                        namespace: Some(ns.clone()),
                        labels: Some(BTreeMap::from([
                            (
                                labels::networking::CIDR_TYPE.to_owned(),
                                kind.label().to_owned(),
                            ),
                            (
                                labels::core::REMOTE_CLUSTER_ID.to_owned(),
                                remote_id.clone(),
                            ),
                        ])),
                        owner_references: Some(vec![owner.clone()]),
                        ..ObjectMeta::default()
                    };
                    tracing::info!(configuration = %name, network = %net_name, cidr = %parsed, "requesting a remapped CIDR");
                    networks
                        .patch(
                            &net_name,
                            &PatchParams::apply(FIELD_MANAGER),
                            &Patch::Apply(&net),
                        )
                        .await
                        .map_err(kube_err(format!("creating Network {net_name}")))?
                }
            };
            match network.status.as_ref().and_then(|s| s.cidr.clone()) {
                Some(got) => match kind {
                    Kind::Pod => remapped.pod.push(got),
                    Kind::External => remapped.external.push(got),
                },
                None => {
                    complete = false;
                    if let Some(reason) = network
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.iter().find(|c| c.status == "False"))
                    {
                        problems.push(format!("Network {net_name}: {}", reason.message));
                    }
                }
            }
        }
    }

    let mut status = cfg.status.clone().unwrap_or_default();
    let (cond_status, reason, message) = if complete {
        (
            true,
            "CIDRsRemapped",
            "the remote CIDRs are remapped".to_owned(),
        )
    } else if remote.pod.is_empty() {
        (
            false,
            "NoRemoteCIDRs",
            "spec.remote.cidr.pod is empty: set the peer's pod CIDR".to_owned(),
        )
    } else if problems.is_empty() {
        (
            false,
            "Pending",
            "waiting for the IPAM to remap the remote CIDRs".to_owned(),
        )
    } else {
        (false, "Error", problems.join("; "))
    };
    let mut conditions: Vec<Condition> = status.conditions.clone();
    set_condition(
        &mut conditions,
        CONDITION_NETWORK_CIDRS_CONFIGURED,
        cond_status,
        reason,
        &message,
        cfg.metadata.generation,
    );
    let new_remote = complete.then_some(ClusterConfig {
        cidr: Some(remapped),
    });
    if conditions != status.conditions || (complete && status.remote != new_remote) {
        status.conditions = conditions;
        if complete {
            status.remote = new_remote;
        }
        let patch = serde_json::json!({ "status": status });
        configurations
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!(
                "writing the status of Configuration {name}"
            )))?;
        if complete {
            tracing::info!(configuration = %name, remote = ?status.remote, "remote CIDRs remapped");
        }
    }
    Ok(if complete {
        Action::requeue(Duration::from_secs(300))
    } else {
        Action::requeue(Duration::from_secs(2))
    })
}

/// The local pod CIDRs and external CIDR, from the IPAM's networks in the Liqo namespace.
async fn local_cidrs(ctx: &Ctx) -> Result<ClusterConfigCidr> {
    let api = Api::<Network>::namespaced(ctx.client.clone(), &ctx.options.liqo_namespace);
    let list = |network_type: &'static str| {
        let api = api.clone();
        async move {
            api.list(
                &ListParams::default()
                    .labels(&format!("{}={network_type}", labels::ipam::NETWORK_TYPE)),
            )
            .await
            .map_err(kube_err(format!("listing the {network_type} networks")))
        }
    };
    let pods = list(labels::ipam::NETWORK_TYPE_POD_CIDR).await?;
    let external = list(labels::ipam::NETWORK_TYPE_EXTERNAL_CIDR).await?;
    let mut pod: Vec<Cidr> = pods.items.iter().map(|n| n.spec.cidr.clone()).collect();
    pod.sort();
    let external = external
        .items
        .iter()
        .filter_map(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.cidr.clone())
                .or_else(|| Some(n.spec.cidr.clone()))
        })
        .collect();
    Ok(ClusterConfigCidr { pod, external })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn network_names_follow_upstream() {
        assert_eq!(
            network_name("milan", Kind::Pod, "10.0.0.0/16".parse().unwrap()),
            "milan-pod-10-0-0-0-16"
        );
        assert_eq!(
            network_name("milan", Kind::External, "10.70.0.0/16".parse().unwrap()),
            "milan-external-10-70-0-0-16"
        );
    }
}
