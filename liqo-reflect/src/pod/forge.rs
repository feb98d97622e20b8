//! Pure translations of offloaded pods: the local Pod into the remote ShadowPod
//! ([`remote_shadow_pod`]), the remote Pod's status back into the local one
//! ([`local_pod_status`]), with restart accounting ([`Restarts`]).

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::core::v1::{
    ContainerStatus, KeyToPath, Pod, PodCondition, PodIP, PodSpec, PodStatus,
    ProjectedVolumeSource, SecretProjection, Toleration, Volume, VolumeProjection,
};
use kube::ResourceExt;
use liqo_core::{
    api::offloading::v1beta1::{PodPhase, ShadowPod, ShadowPodSpec},
    labels::{
        offloading,
        reflection::{DESTINATION, NODE_NAME, ORIGIN},
    },
};
use liqo_ipam::remap::RemoteCidrs;

use crate::{
    forge::{ForgeContext, remote_metadata},
    serviceaccount,
};

/// Reason of the local status of a pod bound to the virtual node in a namespace that is not
/// offloaded.
pub const REASON_OFFLOADING_BACKOFF: &str = "OffloadingBackOff";

/// Reason of the local status of a pod whose remote copy finished and is gone.
pub const REASON_REMOTE_POD_TERMINATED: &str = "RemotePodTerminated";

/// Whether `toleration` is the one letting pods onto virtual nodes (dropped remotely, so
/// the provider never offloads the pod further).
pub fn is_virtual_node_toleration(toleration: &Toleration) -> bool {
    toleration.key.as_deref() == Some(offloading::VIRTUAL_NODE_TAINT)
}

/// The local labels that stay local (the offloaded-pod marker).
const LABELS_NOT_REFLECTED: [&str; 1] = [offloading::SHADOW_POD];

/// Rewrites projected service-account token volumes to read the Secret that the
/// [service-account reflector](crate::serviceaccount) keeps in the remote namespace, so the
/// offloaded pod still authenticates to its origin cluster as its service account.
fn remote_volume(volume: &Volume, service_account: &str) -> Volume {
    let Some(projected) = &volume.projected else {
        return volume.clone();
    };
    let sources = projected.sources.clone().unwrap_or_default();
    if !sources.iter().any(|s| s.service_account_token.is_some()) {
        return volume.clone();
    }
    let secret = VolumeProjection {
        secret: Some(SecretProjection {
            name: serviceaccount::secret_name(service_account),
            items: Some(
                [
                    (serviceaccount::TOKEN_KEY, "token"),
                    (serviceaccount::CA_KEY, "ca.crt"),
                    (serviceaccount::NAMESPACE_KEY, "namespace"),
                ]
                .into_iter()
                .map(|(key, path)| KeyToPath {
                    key: key.to_owned(),
                    path: path.to_owned(),
                    mode: None,
                })
                .collect(),
            ),
            optional: Some(true),
        }),
        ..VolumeProjection::default()
    };
    // The token, the CA bundle and the namespace all come from the Secret now.
    let rest = sources.into_iter().filter(|s| {
        s.service_account_token.is_none()
            && s.config_map
                .as_ref()
                .is_none_or(|c| c.name != "kube-root-ca.crt")
            && s.downward_api.is_none()
    });
    Volume {
        name: volume.name.clone(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(std::iter::once(secret).chain(rest).collect()),
            default_mode: projected.default_mode,
        }),
        ..Volume::default()
    }
}

/// The spec of the remote pod (upstream's `RemotePodSpec`): containers, volumes and the
/// runtime settings are copied; affinity, nodeSelector, nodeName, schedulerName, priority and
/// preemption are dropped (the provider schedules on its own); host namespaces are disabled;
/// the service-account token is not mounted automatically (token volumes read the reflected
/// token Secret instead); the virtual-node toleration is removed.
pub fn remote_pod_spec(local: &PodSpec) -> PodSpec {
    let service_account = local
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    PodSpec {
        containers: local.containers.clone(),
        init_containers: local.init_containers.clone(),
        ephemeral_containers: None,
        volumes: local.volumes.as_ref().map(|volumes| {
            volumes
                .iter()
                .map(|v| remote_volume(v, &service_account))
                .collect()
        }),
        active_deadline_seconds: local.active_deadline_seconds,
        dns_config: local.dns_config.clone(),
        dns_policy: local.dns_policy.clone(),
        enable_service_links: local.enable_service_links,
        host_aliases: local.host_aliases.clone(),
        hostname: local.hostname.clone(),
        image_pull_secrets: local.image_pull_secrets.clone(),
        readiness_gates: local.readiness_gates.clone(),
        restart_policy: local.restart_policy.clone(),
        security_context: local.security_context.clone(),
        set_hostname_as_fqdn: local.set_hostname_as_fqdn,
        share_process_namespace: local.share_process_namespace,
        subdomain: local.subdomain.clone(),
        termination_grace_period_seconds: local.termination_grace_period_seconds,
        topology_spread_constraints: local.topology_spread_constraints.clone(),
        os: local.os.clone(),
        automount_service_account_token: Some(false),
        host_ipc: Some(false),
        host_network: Some(false),
        host_pid: Some(false),
        tolerations: local.tolerations.as_ref().and_then(|ts| {
            let kept: Vec<Toleration> = ts
                .iter()
                .filter(|t| !is_virtual_node_toleration(t))
                .cloned()
                .collect();
            (!kept.is_empty()).then_some(kept)
        }),
        ..PodSpec::default()
    }
}

/// The ShadowPod that stands for `local` in the remote namespace: same name, the local labels
/// (but `liqo.io/shadowPod`) plus `offloading.liqo.io/{origin,destination,nodename}`, the local
/// annotations minus the reflection-control ones, and [`remote_pod_spec`].
pub fn remote_shadow_pod(local: &Pod, ctx: &ForgeContext, node_name: &str) -> ShadowPod {
    let mut metadata = remote_metadata(&local.metadata);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    for key in LABELS_NOT_REFLECTED {
        labels.remove(key);
    }
    labels.insert(ORIGIN.to_owned(), ctx.local_cluster.to_string());
    labels.insert(DESTINATION.to_owned(), ctx.remote_cluster.to_string());
    labels.insert(NODE_NAME.to_owned(), node_name.to_owned());
    metadata.namespace = Some(ctx.remote_namespace.clone());
    ShadowPod {
        metadata,
        spec: ShadowPodSpec {
            pod: local.spec.as_ref().map(remote_pod_spec),
        },
        status: None,
    }
}

/// Restart accounting of one offloaded pod: the UID of the remote pod last seen, and how many
/// restarts to add to the remote counters (remote pods recreated by the ShadowPod controller
/// start again from zero).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restarts {
    /// UID of the remote pod last seen.
    pub remote_uid: String,
    /// Restarts added to every remote container's `restartCount`.
    pub extra: i32,
}

fn max_restarts(statuses: Option<&Vec<ContainerStatus>>) -> i32 {
    statuses
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

impl Restarts {
    /// The accounting after seeing `remote` for the local pod `local`, given what was known
    /// before (`None` after a restart of the virtual kubelet: the extra restarts are then
    /// inferred from how far the local counters are ahead of the remote ones).
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Pod;
    /// use liqo_reflect::pod::forge::Restarts;
    ///
    /// let remote = |uid: &str| {
    ///     let mut pod = Pod::default();
    ///     pod.metadata.uid = Some(uid.into());
    ///     pod
    /// };
    /// let first = Restarts::observe(None, &Pod::default(), &remote("a"));
    /// assert_eq!(first.extra, 0);
    /// // The remote pod was deleted and recreated: one more restart.
    /// let second = Restarts::observe(Some(&first), &Pod::default(), &remote("b"));
    /// assert_eq!((second.remote_uid.as_str(), second.extra), ("b", 1));
    /// ```
    pub fn observe(previous: Option<&Self>, local: &Pod, remote: &Pod) -> Self {
        let uid = remote.metadata.uid.clone().unwrap_or_default();
        let remote_status = remote.status.as_ref();
        let local_status = local.status.as_ref();
        match previous {
            Some(p) if p.remote_uid == uid => p.clone(),
            Some(p) => {
                // The previous remote pod's restarts, plus its replacement.
                let previous_local =
                    max_restarts(local_status.and_then(|s| s.container_statuses.as_ref()));
                Self {
                    remote_uid: uid,
                    extra: previous_local.max(p.extra) + 1,
                }
            }
            None => {
                let local_max = local_status
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let remote = remote_status
                            .and_then(|s| s.container_statuses.as_ref())
                            .into_iter()
                            .flatten()
                            .find(|r| r.name == c.name)
                            .map_or(0, |r| r.restart_count);
                        c.restart_count - remote
                    })
                    .max()
                    .unwrap_or(0);
                Self {
                    remote_uid: uid,
                    extra: local_max.max(0),
                }
            }
        }
    }
}

/// Translates a remote pod IP into the local view: through `cidrs` when it falls in one of
/// the provider's CIDRs. With the network fabric (`cidrs` known), an address outside them is
/// dropped (`None`): a provider reports its pods' addresses, and may not point the consumer's
/// Services at anything else (its own API server, say). Without the fabric (no CIDRs) it is
/// kept as it is.
pub fn remap_ip(ip: &str, cidrs: &RemoteCidrs) -> Option<String> {
    let known = cidrs.mappings().next().is_some();
    match ip.parse::<IpAddr>() {
        Ok(addr) => match cidrs.to_remapped(addr) {
            Some(local) => Some(local.to_string()),
            None if known => None,
            None => Some(addr.to_string()),
        },
        Err(_) => None,
    }
}

/// The local status of an offloaded pod (upstream's `LocalPodStatus`): the remote pod's phase,
/// conditions, container statuses and times; pod IPs translated with `cidrs`; host IP = the
/// virtual kubelet's `node_ip`; every `restartCount` increased by `restarts.extra`. A local
/// pod labelled `liqo.io/remote-unavailable=true` is reported not Ready.
pub fn local_pod_status(
    local: &Pod,
    remote: &Pod,
    cidrs: &RemoteCidrs,
    node_ip: IpAddr,
    restarts: &Restarts,
) -> PodStatus {
    let mut status = remote.status.clone().unwrap_or_default();
    status.pod_ip = status.pod_ip.as_deref().and_then(|ip| remap_ip(ip, cidrs));
    status.pod_ips = status
        .pod_ips
        .map(|ips| {
            ips.into_iter()
                .filter_map(|ip| remap_ip(&ip.ip, cidrs).map(|ip| PodIP { ip }))
                .collect::<Vec<_>>()
        })
        .filter(|ips| !ips.is_empty());
    status.host_ip = Some(node_ip.to_string());
    status.host_ips = Some(vec![k8s_openapi::api::core::v1::HostIP {
        ip: node_ip.to_string(),
    }]);
    status.nominated_node_name = None;
    for list in [
        status.container_statuses.as_mut(),
        status.init_container_statuses.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        for c in list.iter_mut() {
            c.restart_count += restarts.extra;
        }
    }
    let unavailable = local
        .labels()
        .get(offloading::REMOTE_UNAVAILABLE)
        .is_some_and(|v| v == "true");
    if unavailable {
        for c in status.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".to_owned();
                c.reason = Some("RemoteUnavailable".to_owned());
            }
        }
    }
    status
}

/// The local status of a pod whose remote copy is gone for good after the ShadowPod reported
/// `phase`: that phase with reason `RemotePodTerminated` (or `None` when the phase is not
/// final).
pub fn terminated_status(phase: PodPhase) -> Option<PodStatus> {
    let phase = match phase {
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
        _ => return None,
    };
    Some(PodStatus {
        phase: Some(phase.to_owned()),
        reason: Some(REASON_REMOTE_POD_TERMINATED.to_owned()),
        message: Some("the remote pod terminated and is gone".to_owned()),
        ..PodStatus::default()
    })
}

/// The status of a pod bound to the virtual node in a namespace that is not offloaded:
/// `Pending`, reason `OffloadingBackOff`.
pub fn backoff_status(namespace: &str) -> PodStatus {
    PodStatus {
        phase: Some("Pending".to_owned()),
        reason: Some(REASON_OFFLOADING_BACKOFF.to_owned()),
        message: Some(format!(
            "namespace {namespace} is not offloaded to this virtual node's cluster: create a \
             NamespaceOffloading named \"offloading\" in it (liqoctl offload namespace {namespace})"
        )),
        conditions: Some(vec![PodCondition {
            type_: "Ready".to_owned(),
            status: "False".to_owned(),
            reason: Some(REASON_OFFLOADING_BACKOFF.to_owned()),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    }
}

/// Whether the local status already shows everything in `desired` (so nothing is written).
pub fn status_matches(current: Option<&PodStatus>, desired: &PodStatus) -> bool {
    let strip = |s: &PodStatus| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let Some(conditions) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in conditions.iter_mut() {
                if let Some(c) = c.as_object_mut() {
                    c.remove("lastProbeTime");
                    c.remove("lastTransitionTime");
                }
            }
            conditions.sort_by_key(|c| c.get("type").and_then(|t| t.as_str()).map(str::to_owned));
        }
        v
    };
    let current = current.map(strip).unwrap_or_default();
    let desired = strip(desired);
    let Some(desired) = desired.as_object() else {
        return true;
    };
    desired.iter().all(|(k, v)| current.get(k) == Some(v))
        && ["reason", "message"]
            .iter()
            .all(|k| desired.contains_key(*k) || current.get(*k).is_none())
}

/// The merge patch writing `status` as the whole local status (`reason` and `message` are
/// cleared when `status` has none).
pub fn status_patch(status: &PodStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        for key in ["reason", "message", "nominatedNodeName"] {
            obj.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({ "status": value })
}

/// What the pod reflector does for one pod name, given the local pod, the ShadowPod and the
/// remote pod it knows ([`plan`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PodAction {
    /// Nothing to do.
    Nothing,
    /// The local pod is gone or terminating: delete the ShadowPod (the provider then deletes
    /// its pod).
    DeleteShadow,
    /// The local pod is terminating and the remote pod is still being torn down: wait.
    WaitForRemote,
    /// The local pod is terminating and nothing is left remotely: finish its deletion.
    FinalizeLocal,
    /// The local pod is alive: the steps to take.
    Reflect {
        /// Label the local pod `liqo.io/shadowPod=true`.
        label: bool,
        /// Create the ShadowPod.
        create_shadow: bool,
        /// Write this local status (only when it differs from the current one).
        status: Option<Box<PodStatus>>,
        /// The restart accounting to remember (when a remote pod was seen).
        restarts: Option<Restarts>,
    },
}

/// Decides what to do for one pod name (pure): see [`PodAction`]. `previous` is the restart
/// accounting remembered for the pod; `cidrs` and `node_ip` shape the local status.
pub fn plan(
    local: Option<&Pod>,
    shadow: Option<&ShadowPod>,
    remote: Option<&Pod>,
    previous: Option<&Restarts>,
    cidrs: &RemoteCidrs,
    node_ip: IpAddr,
) -> PodAction {
    let Some(local) = local else {
        return if shadow.is_some() {
            PodAction::DeleteShadow
        } else {
            PodAction::Nothing
        };
    };
    if local.metadata.deletion_timestamp.is_some() {
        return match (shadow, remote) {
            (Some(_), _) => PodAction::DeleteShadow,
            (None, Some(_)) => PodAction::WaitForRemote,
            (None, None) => PodAction::FinalizeLocal,
        };
    }
    let label = local
        .labels()
        .get(offloading::SHADOW_POD)
        .map(String::as_str)
        != Some("true");
    let phase = local.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    let (create_shadow, status, restarts) = match (shadow, remote) {
        (None, _) => (!finished, None, None),
        (Some(_), Some(remote)) => {
            let restarts = Restarts::observe(previous, local, remote);
            let status = local_pod_status(local, remote, cidrs, node_ip, &restarts);
            (false, Some(status), Some(restarts))
        }
        (Some(shadow), None) => {
            let phase = shadow.status.as_ref().map(|s| s.phase).unwrap_or_default();
            (false, terminated_status(phase), None)
        }
    };
    let status = status
        .filter(|s| !status_matches(local.status.as_ref(), s))
        .map(Box::new);
    if !label && !create_shadow && status.is_none() && restarts.as_ref() == previous {
        return PodAction::Nothing;
    }
    PodAction::Reflect {
        label,
        create_shadow,
        status,
        restarts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnetwork::IpNetwork;
    use liqo_ipam::remap::Mapping;
    use serde_json::json;

    fn ctx() -> ForgeContext {
        ForgeContext {
            local_cluster: "rome".parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: "demo".into(),
            remote_namespace: "demo-rome".into(),
        }
    }

    fn local_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "web-1", "namespace": "demo", "uid": "local-uid",
                "labels": {"app": "web", "liqo.io/shadowPod": "true"},
                "annotations": {"team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
            },
            "spec": {
                "nodeName": "milan",
                "schedulerName": "default-scheduler",
                "priority": 0,
                "nodeSelector": {"liqo.io/type": "virtual-node"},
                "affinity": {"nodeAffinity": {}},
                "hostNetwork": true,
                "hostPID": true,
                "serviceAccountName": "app",
                "containers": [{"name": "web", "image": "nginx"}],
                "tolerations": [
                    {"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                ],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "kube-api-access-x", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                    ]}},
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn shadow_pod_spec_is_mutated_as_upstream() {
        let shadow = remote_shadow_pod(&local_pod(), &ctx(), "milan");
        assert_eq!(shadow.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(shadow.metadata.namespace.as_deref(), Some("demo-rome"));
        let labels = shadow.metadata.labels.clone().unwrap();
        assert_eq!(labels["app"], "web");
        assert!(!labels.contains_key("liqo.io/shadowPod"));
        assert_eq!(labels["offloading.liqo.io/origin"], "rome");
        assert_eq!(labels["offloading.liqo.io/destination"], "milan");
        assert_eq!(labels["offloading.liqo.io/nodename"], "milan");
        let annotations = shadow.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1, "{annotations:?}");
        assert_eq!(shadow.metadata.uid, None);

        let spec = shadow.spec.pod.unwrap();
        assert_eq!(spec.node_name, None);
        assert_eq!(spec.node_selector, None);
        assert_eq!(spec.affinity, None);
        assert_eq!(spec.scheduler_name, None);
        assert_eq!(spec.priority, None);
        assert_eq!(spec.host_network, Some(false));
        assert_eq!(spec.host_pid, Some(false));
        assert_eq!(spec.host_ipc, Some(false));
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.service_account_name, None);
        assert_eq!(spec.containers[0].image.as_deref(), Some("nginx"));
        let tolerations = spec.tolerations.unwrap();
        assert_eq!(tolerations.len(), 1);
        assert_eq!(
            tolerations[0].key.as_deref(),
            Some("node.kubernetes.io/not-ready")
        );
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].empty_dir, Some(Default::default()));
        let sources = volumes[1].projected.clone().unwrap().sources.unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].secret.as_ref().unwrap().name, "app-liqo-token");
    }

    fn remote_pod(uid: &str, ip: &str, restarts: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "demo-rome", "uid": uid},
            "status": {
                "phase": "Running",
                "podIP": ip, "podIPs": [{"ip": ip}],
                "hostIP": "172.16.0.3",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "web", "image": "nginx", "imageID": "", "ready": true, "restartCount": restarts}],
            },
        }))
        .unwrap()
    }

    fn cidrs() -> RemoteCidrs {
        let net = |s: &str| s.parse::<IpNetwork>().unwrap();
        RemoteCidrs {
            pod: vec![Mapping::new(net("10.0.0.0/16"), net("10.71.0.0/16")).unwrap()],
            external: vec![],
        }
    }

    #[test]
    fn status_is_remapped() {
        let local = local_pod();
        let remote = remote_pod("r1", "10.0.3.4", 2);
        let restarts = Restarts::observe(None, &local, &remote);
        let status = local_pod_status(
            &local,
            &remote,
            &cidrs(),
            "192.168.1.9".parse().unwrap(),
            &restarts,
        );
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.71.3.4"));
        assert_eq!(status.pod_ips.unwrap()[0].ip, "10.71.3.4");
        assert_eq!(status.host_ip.as_deref(), Some("192.168.1.9"));
        assert_eq!(status.container_statuses.unwrap()[0].restart_count, 2);
        // Outside the provider's CIDRs: dropped (a provider cannot point Services elsewhere).
        assert_eq!(remap_ip("192.168.0.1", &cidrs()), None);
        let forged = remote_pod("r1", "127.0.0.1", 0);
        let status = local_pod_status(
            &local,
            &forged,
            &cidrs(),
            "192.168.1.9".parse().unwrap(),
            &restarts,
        );
        assert_eq!(status.pod_ip, None);
        assert_eq!(status.pod_ips, None);
        // Without the network fabric the address is all there is: kept.
        assert_eq!(
            remap_ip("10.0.3.4", &RemoteCidrs::default()).as_deref(),
            Some("10.0.3.4")
        );
    }

    #[test]
    fn restart_count_grows_when_the_remote_pod_is_recreated() {
        let mut local = local_pod();
        let first = remote_pod("r1", "10.0.3.4", 3);
        let r1 = Restarts::observe(None, &local, &first);
        local.status = Some(local_pod_status(
            &local,
            &first,
            &cidrs(),
            "1.1.1.1".parse().unwrap(),
            &r1,
        ));
        assert_eq!(
            local
                .status
                .as_ref()
                .unwrap()
                .container_statuses
                .as_ref()
                .unwrap()[0]
                .restart_count,
            3
        );
        let second = remote_pod("r2", "10.0.3.5", 0);
        let r2 = Restarts::observe(Some(&r1), &local, &second);
        let status = local_pod_status(&local, &second, &cidrs(), "1.1.1.1".parse().unwrap(), &r2);
        assert_eq!(status.container_statuses.unwrap()[0].restart_count, 4);
        // After a virtual-kubelet restart the extra restarts are inferred.
        let again = Restarts::observe(None, &local, &remote_pod("r1", "10.0.3.4", 0));
        assert_eq!(again.extra, 3);
    }

    #[test]
    fn remote_unavailable_forces_not_ready() {
        let mut local = local_pod();
        local
            .labels_mut()
            .insert("liqo.io/remote-unavailable".into(), "true".into());
        let remote = remote_pod("r1", "10.0.3.4", 0);
        let status = local_pod_status(
            &local,
            &remote,
            &cidrs(),
            "1.1.1.1".parse().unwrap(),
            &Restarts::default(),
        );
        assert_eq!(status.conditions.unwrap()[0].status, "False");
    }

    #[test]
    fn status_comparison_and_patch() {
        let backoff = backoff_status("demo");
        assert!(!status_matches(None, &backoff));
        assert!(status_matches(Some(&backoff), &backoff));
        let running = PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        };
        // A stale reason must be cleared.
        assert!(!status_matches(Some(&backoff), &running));
        let patch = status_patch(&running);
        assert_eq!(patch["status"]["reason"], serde_json::Value::Null);
        assert_eq!(terminated_status(PodPhase::Running), None);
        assert_eq!(
            terminated_status(PodPhase::Succeeded)
                .unwrap()
                .reason
                .as_deref(),
            Some(REASON_REMOTE_POD_TERMINATED)
        );
    }

    #[test]
    fn plans() {
        let node_ip: IpAddr = "1.1.1.1".parse().unwrap();
        let local = local_pod();
        let shadow = remote_shadow_pod(&local, &ctx(), "milan");
        let remote = remote_pod("r1", "10.0.3.4", 0);
        let plan_for = |l: Option<&Pod>, s: Option<&ShadowPod>, r: Option<&Pod>| {
            plan(l, s, r, None, &cidrs(), node_ip)
        };
        assert_eq!(plan_for(None, None, None), PodAction::Nothing);
        assert_eq!(
            plan_for(None, Some(&shadow), Some(&remote)),
            PodAction::DeleteShadow
        );
        let mut terminating = local.clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(
            plan_for(Some(&terminating), Some(&shadow), Some(&remote)),
            PodAction::DeleteShadow
        );
        assert_eq!(
            plan_for(Some(&terminating), None, Some(&remote)),
            PodAction::WaitForRemote
        );
        assert_eq!(
            plan_for(Some(&terminating), None, None),
            PodAction::FinalizeLocal
        );

        // New pod (labelled already): create the ShadowPod.
        let PodAction::Reflect {
            label,
            create_shadow,
            status,
            ..
        } = plan_for(Some(&local), None, None)
        else {
            panic!("expected reflection");
        };
        assert!(!label && create_shadow && status.is_none());
        let mut unlabelled = local.clone();
        unlabelled.labels_mut().remove("liqo.io/shadowPod");
        assert!(matches!(
            plan_for(Some(&unlabelled), None, None),
            PodAction::Reflect { label: true, .. }
        ));

        // Remote running: status to write, then nothing once written.
        let PodAction::Reflect {
            status: Some(status),
            restarts: Some(restarts),
            create_shadow: false,
            ..
        } = plan_for(Some(&local), Some(&shadow), Some(&remote))
        else {
            panic!("expected a status");
        };
        let mut synced = local.clone();
        synced.status = Some(*status);
        assert_eq!(
            plan(
                Some(&synced),
                Some(&shadow),
                Some(&remote),
                Some(&restarts),
                &cidrs(),
                node_ip
            ),
            PodAction::Nothing
        );

        // Finished locally and gone remotely: not offloaded again.
        let mut done = local.clone();
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..PodStatus::default()
        });
        assert_eq!(plan_for(Some(&done), None, None), PodAction::Nothing);
        // Remote pod gone after the ShadowPod reported success: the local pod shows it.
        let mut finished_shadow = shadow.clone();
        finished_shadow.status = Some(liqo_core::api::offloading::v1beta1::ShadowPodStatus {
            phase: PodPhase::Succeeded,
        });
        let PodAction::Reflect {
            status: Some(status),
            ..
        } = plan_for(Some(&local), Some(&finished_shadow), None)
        else {
            panic!("expected a final status");
        };
        assert_eq!(status.reason.as_deref(), Some(REASON_REMOTE_POD_TERMINATED));
    }
}
