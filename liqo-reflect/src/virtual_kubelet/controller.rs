//! The VirtualNode controller (consumer side): one virtual kubelet per VirtualNode.
//!
//! For each VirtualNode it keeps a virtual kubelet running through a [`Launcher`] (restarted
//! if it exits or its arguments change), reports it in the VirtualNode's conditions
//! (`VirtualKubelet`, `Node`), and on deletion (finalizer
//! `virtualnode-controller.liqo.io/finalizer`) stops the kubelet and deletes the Node.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use liqo_core::{
    api::networking::v1beta1::Configuration,
    api::offloading::v1beta1::{
        VirtualNode, VirtualNodeCondition, VirtualNodeConditionStatus, VirtualNodeConditionType,
    },
    ids::ClusterId,
    labels::offloading::VIRTUAL_NODE_FINALIZER,
    runtime::KeyedBackoff,
};
use tracing::{info, warn};

use super::launcher::{LaunchSpec, Launcher};
use crate::{Error, Result};

/// Settings of the VirtualNode controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Id of the local (consumer) cluster.
    pub home_cluster_id: ClusterId,
    /// Arguments added to every virtual kubelet's (e.g. `--node-ping-interval=5s`).
    pub extra_args: Vec<String>,
    /// How often a running kubelet is checked (and restarted if it exited).
    pub resync: Duration,
    /// Whether each kubelet runs with its own ServiceAccount (see
    /// [`identity`](super::identity)) rather than the launcher's credentials.
    pub own_identity: bool,
}

/// The arguments of the virtual kubelet of `vn` (pure). The error says what is missing.
///
/// ```
/// use liqo_core::api::offloading::v1beta1::{VirtualNode, VirtualNodeSpec};
/// use liqo_reflect::virtual_kubelet::controller::kubelet_args;
///
/// let mut vn = VirtualNode::new("milan", VirtualNodeSpec { cluster_id: Some("milan".into()), ..Default::default() });
/// vn.metadata.namespace = Some("liqo-tenant-milan".into());
/// let args = kubelet_args(&vn, &"rome".parse().unwrap(), &[]).unwrap();
/// assert_eq!(args[..2], ["--virtual-node-name".to_owned(), "milan".to_owned()]);
/// ```
pub fn kubelet_args(
    vn: &VirtualNode,
    home_cluster_id: &ClusterId,
    extra: &[String],
) -> std::result::Result<Vec<String>, String> {
    let cluster: ClusterId = vn
        .spec
        .cluster_id
        .as_deref()
        .ok_or("spec.clusterID is required")?
        .parse()
        .map_err(|e| format!("spec.clusterID: {e}"))?;
    let mut args = vec![
        "--virtual-node-name".to_owned(),
        vn.name_any(),
        "--tenant-namespace".to_owned(),
        vn.namespace().unwrap_or_default(),
        "--home-cluster-id".to_owned(),
        home_cluster_id.to_string(),
        "--foreign-cluster-id".to_owned(),
        cluster.to_string(),
        "--create-node".to_owned(),
        vn.spec.create_node.unwrap_or(true).to_string(),
    ];
    if let Some(secret) = vn
        .spec
        .kubeconfig_secret_ref
        .as_ref()
        .filter(|r| !r.name.is_empty())
    {
        args.push("--foreign-kubeconfig-secret-name".to_owned());
        args.push(secret.name.clone());
    }
    args.extend(extra.iter().cloned());
    Ok(args)
}

/// The pod and external CIDR flags of the virtual kubelet from the peering's
/// `Configuration` (pure): how the peer's real CIDRs are remapped locally, so the kubelet
/// reports offloaded pods at addresses the local cluster routes. Nothing until the IPAM
/// has remapped them (or without networking).
///
/// ```
/// use liqo_core::api::networking::v1beta1::{
///     Cidr, ClusterConfig, ClusterConfigCidr, Configuration, ConfigurationSpec, ConfigurationStatus,
/// };
/// use liqo_reflect::virtual_kubelet::controller::network_args;
///
/// let cidrs = |pod: &str, ext: &str| Some(ClusterConfig { cidr: Some(ClusterConfigCidr {
///     pod: vec![Cidr(pod.into())], external: vec![Cidr(ext.into())] }) });
/// let mut cfg = Configuration::new("milan", ConfigurationSpec {
///     local: None, remote: cidrs("10.0.0.0/16", "10.70.0.0/16") });
/// assert!(network_args(&cfg).is_empty());
/// cfg.status = Some(ConfigurationStatus { remote: cidrs("10.71.0.0/16", "10.91.0.0/16"), ..Default::default() });
/// assert_eq!(network_args(&cfg).join(" "), "--remote-pod-cidr 10.0.0.0/16 \
///     --remote-pod-cidr-remap 10.71.0.0/16 --remote-external-cidr 10.70.0.0/16 \
///     --remote-external-cidr-remap 10.91.0.0/16");
/// ```
pub fn network_args(configuration: &Configuration) -> Vec<String> {
    let real = configuration
        .spec
        .remote
        .as_ref()
        .and_then(|r| r.cidr.as_ref());
    let remapped = configuration
        .status
        .as_ref()
        .and_then(|s| s.remote.as_ref())
        .and_then(|r| r.cidr.as_ref());
    let (Some(real), Some(remapped)) = (real, remapped) else {
        return Vec::new();
    };
    let mut args = Vec::new();
    for (flag, real, remapped) in [
        ("pod", real.pod.first(), remapped.pod.first()),
        ("external", real.external.first(), remapped.external.first()),
    ] {
        if let (Some(r), Some(m)) = (real, remapped) {
            args.extend([
                format!("--remote-{flag}-cidr"),
                r.to_string(),
                format!("--remote-{flag}-cidr-remap"),
                m.to_string(),
            ]);
        }
    }
    args
}

struct Context {
    client: Client,
    launcher: Arc<dyn Launcher>,
    config: Config,
    backoff: KeyedBackoff<ObjectRef<VirtualNode>>,
    /// The current token of each kubelet, with when it was issued.
    tokens: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

/// How long a kubelet token lives; it is renewed after a third of that.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The token of the kubelet of `vn`: the current one while fresh, else a new one.
async fn kubelet_token(ctx: &Context, vn: &VirtualNode) -> Result<String> {
    let (ns, name) = (vn.namespace().unwrap_or_default(), vn.name_any());
    let k = key(vn);
    {
        let tokens = ctx.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, at)) = tokens.get(&k)
            && at.elapsed() < TOKEN_LIFETIME / 3
        {
            return Ok(token.clone());
        }
    }
    super::identity::ensure(&ctx.client, &ns, &name).await?;
    let token = super::identity::token(&ctx.client, &ns, &name, TOKEN_LIFETIME).await?;
    ctx.tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(k, (token.clone(), std::time::Instant::now()));
    Ok(token)
}

fn key(vn: &VirtualNode) -> String {
    format!("{}/{}", vn.namespace().unwrap_or_default(), vn.name_any())
}

async fn set_conditions(
    api: &Api<VirtualNode>,
    vn: &VirtualNode,
    wanted: &[(VirtualNodeConditionType, VirtualNodeConditionStatus, &str)],
) -> Result<()> {
    let previous = vn
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions: Vec<VirtualNodeCondition> = wanted
        .iter()
        .map(|(type_, status, reason)| {
            let old = previous.iter().find(|c| c.type_ == *type_);
            let same = old.is_some_and(|c| c.status == *status);
            VirtualNodeCondition {
                type_: *type_,
                status: *status,
                last_transition_time: if same {
                    old.and_then(|c| c.last_transition_time.clone())
                } else {
                    Some(Time(Timestamp::now()))
                },
                reason: Some((*reason).to_owned()),
                message: None,
            }
        })
        .collect();
    let unchanged = conditions.len() == previous.len()
        && conditions.iter().all(|c| {
            previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason)
        });
    if unchanged {
        return Ok(());
    }
    api.patch_status(
        &vn.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"conditions": conditions}})),
    )
    .await
    .map_err(Error::kube(format!(
        "writing the status of VirtualNode {}",
        key(vn)
    )))?;
    Ok(())
}

async fn set_finalizer(api: &Api<VirtualNode>, vn: &VirtualNode, present: bool) -> Result<()> {
    let mut finalizers = vn.finalizers().to_vec();
    if finalizers.iter().any(|f| f == VIRTUAL_NODE_FINALIZER) == present {
        return Ok(());
    }
    if present {
        finalizers.push(VIRTUAL_NODE_FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != VIRTUAL_NODE_FINALIZER);
    }
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": vn.resource_version(),
    }});
    api.patch(
        &vn.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube(format!(
        "updating the finalizers of VirtualNode {}",
        key(vn)
    )))?;
    Ok(())
}

async fn reconcile(vn: Arc<VirtualNode>, ctx: Arc<Context>) -> Result<Action> {
    use VirtualNodeConditionStatus as S;
    use VirtualNodeConditionType as T;
    let api: Api<VirtualNode> =
        Api::namespaced(ctx.client.clone(), &vn.namespace().unwrap_or_default());
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    if vn.metadata.deletion_timestamp.is_some() {
        ctx.launcher.stop(&key(&vn)).await?;
        ctx.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(&vn));
        if ctx.config.own_identity {
            super::identity::remove(
                &ctx.client,
                &vn.namespace().unwrap_or_default(),
                &vn.name_any(),
            )
            .await?;
        }
        match nodes.delete(&vn.name_any(), &DeleteParams::default()).await {
            Ok(_) => info!(node = %vn.name_any(), "virtual Node deleted"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::kube(format!("deleting Node {}", vn.name_any()))(e)),
        }
        set_finalizer(&api, &vn, false).await?;
        return Ok(Action::await_change());
    }
    set_finalizer(&api, &vn, true).await?;
    let args = match kubelet_args(&vn, &ctx.config.home_cluster_id, &ctx.config.extra_args) {
        Ok(mut args) => {
            // With networking, the peering's Configuration says how the peer's pod IPs are
            // seen here; the kubelet restarts with the flags once the IPAM remapped them.
            let peer = vn.spec.cluster_id.clone().unwrap_or_default();
            let configurations: Api<Configuration> =
                Api::namespaced(ctx.client.clone(), &vn.namespace().unwrap_or_default());
            let selector = format!("{}={peer}", liqo_core::labels::core::REMOTE_CLUSTER_ID);
            match configurations
                .list(&kube::api::ListParams::default().labels(&selector))
                .await
            {
                Ok(list) => {
                    if let Some(cfg) = list.items.first() {
                        args.extend(network_args(cfg));
                    }
                }
                Err(e) => warn!(error = %e, "cannot read the peering's Configuration"),
            }
            args
        }
        Err(message) => {
            set_conditions(&api, &vn, &[(T::VirtualKubelet, S::None, "InvalidSpec")]).await?;
            return Err(Error::InvalidConfig(format!(
                "VirtualNode {}: {message}",
                key(&vn)
            )));
        }
    };
    let started = ctx
        .launcher
        .ensure(&LaunchSpec {
            key: key(&vn),
            args,
            token: if ctx.config.own_identity {
                Some(kubelet_token(&ctx, &vn).await?)
            } else {
                None
            },
        })
        .await?;
    let node = nodes
        .get_opt(&vn.name_any())
        .await
        .map_err(Error::kube(format!("reading Node {}", vn.name_any())))?;
    let mut conditions = vec![(
        T::VirtualKubelet,
        S::Running,
        if started { "Started" } else { "Running" },
    )];
    if vn.spec.create_node.unwrap_or(true) {
        conditions.push(match node {
            Some(_) => (T::Node, S::Running, "NodeRegistered"),
            None => (T::Node, S::Creating, "WaitingForNode"),
        });
    }
    // "Started" is transient: report it as Running once the kubelet keeps running.
    if started {
        conditions[0].2 = "Running";
    }
    set_conditions(&api, &vn, &conditions).await?;
    ctx.backoff.reset_object(&vn);
    Ok(Action::requeue(ctx.config.resync))
}

fn error_policy(vn: Arc<VirtualNode>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(virtual_node = %key(&vn), %error, "VirtualNode reconcile failed");
    ctx.backoff.requeue_object(&vn)
}

/// Runs the VirtualNode controller until `shutdown` resolves; the virtual kubelets are
/// stopped when it returns (if the launcher stops them on drop, as [`ProcessLauncher`] does).
///
/// [`ProcessLauncher`]: super::launcher::ProcessLauncher
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_reflect::Result<()> {
/// use std::{sync::Arc, time::Duration};
///
/// use liqo_reflect::virtual_kubelet::{controller, launcher::ProcessLauncher};
///
/// let launcher = Arc::new(ProcessLauncher::new("liqo-virtual-kubelet", vec![]));
/// let config = controller::Config {
///     home_cluster_id: "rome".parse().unwrap(),
///     extra_args: vec![],
///     resync: Duration::from_secs(10),
///     own_identity: true,
/// };
/// controller::run(client, launcher, config, liqo_core::runtime::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    client: Client,
    launcher: Arc<dyn Launcher>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    if config.own_identity {
        super::identity::ensure_cluster_role(&client).await?;
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        launcher,
        config,
        backoff: KeyedBackoff::default(),
        tokens: std::sync::Mutex::default(),
    });
    info!("VirtualNode controller running");
    Controller::new(Api::<VirtualNode>::all(client), watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
    info!("VirtualNode controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::LocalObjectReference;
    use liqo_core::api::offloading::v1beta1::VirtualNodeSpec;

    #[test]
    fn args_from_the_virtual_node() {
        let mut vn = VirtualNode::new(
            "milan",
            VirtualNodeSpec {
                cluster_id: Some("milan".into()),
                create_node: Some(false),
                kubeconfig_secret_ref: Some(LocalObjectReference { name: "kc".into() }),
                ..VirtualNodeSpec::default()
            },
        );
        vn.metadata.namespace = Some("liqo-tenant-milan".into());
        let args = kubelet_args(&vn, &"rome".parse().unwrap(), &["--x".into()]).unwrap();
        assert_eq!(
            args.join(" "),
            "--virtual-node-name milan --tenant-namespace liqo-tenant-milan --home-cluster-id rome \
             --foreign-cluster-id milan --create-node false --foreign-kubeconfig-secret-name kc --x"
        );
        vn.spec.cluster_id = None;
        assert!(
            kubelet_args(&vn, &"rome".parse().unwrap(), &[])
                .unwrap_err()
                .contains("clusterID")
        );
    }
}
