//! The virtual Node: what it looks like ([`forge_node`], [`node_status`]), how healthy the
//! provider is ([`Health`]), and the loop that keeps both in the API server ([`run_node`]).

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{
            DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec,
            NodeStatus, NodeSystemInfo, Taint,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams, PostParams},
};
use liqo_core::{
    api::offloading::v1beta1::VirtualNode,
    ids::ClusterId,
    labels::{TRUE, core, offloading},
};
use tracing::{debug, info, warn};

use crate::{Error, Result};

/// Namespace of the node Leases (the kubelet heartbeat).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Field manager of what the virtual kubelet writes on its Node and Lease.
pub const NODE_FIELD_MANAGER: &str = "liqo-virtual-kubelet";

/// Reason of the `Ready=False` condition when the provider's API server does not answer.
pub const REASON_REMOTE_UNREACHABLE: &str = "RemoteClusterUnreachable";

/// Reason of the `Ready=False` condition when the VirtualNode offers no CPU or memory.
pub const REASON_NO_RESOURCES: &str = "NoResources";

/// What the Node is built from besides the VirtualNode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeParams {
    /// Name of the Node (the VirtualNode's name).
    pub name: String,
    /// Id of the provider cluster.
    pub remote_cluster_id: ClusterId,
    /// Address of the virtual kubelet (Node `InternalIP`, host IP of offloaded pods).
    pub node_ip: IpAddr,
    /// Port of the kubelet API the Node advertises.
    pub kubelet_port: u16,
    /// Version shown as `status.nodeInfo.kubeletVersion` (the home API server's).
    pub kubelet_version: String,
    /// Labels added to the Node besides the built-in ones and the VirtualNode's.
    pub extra_labels: BTreeMap<String, String>,
}

/// The taint every virtual node carries: `virtual-node.liqo.io/not-allowed=true:NoExecute`.
pub fn virtual_node_taint() -> Taint {
    Taint {
        key: offloading::VIRTUAL_NODE_TAINT.to_owned(),
        value: Some(TRUE.to_owned()),
        effect: offloading::VIRTUAL_NODE_TAINT_EFFECT.to_owned(),
        time_added: None,
    }
}

/// The labels of the virtual Node: the built-in ones (`liqo.io/type=virtual-node`,
/// `liqo.io/remote-cluster-id`, `kubernetes.io/hostname`, `type=virtual-kubelet`, ...), then
/// `params.extra_labels`, then the VirtualNode's `spec.labels` (which win over the extra
/// labels, but never over the node's identity: hostname, `liqo.io/type`, `type`,
/// `liqo.io/remote-cluster-id`).
pub fn node_labels(vn: &VirtualNode, params: &NodeParams) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", params.name.as_str()),
        ("kubernetes.io/role", "agent"),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", std::env::consts::ARCH),
        (core::TYPE, core::TYPE_VIRTUAL_NODE),
        ("type", "virtual-kubelet"),
        (core::REMOTE_CLUSTER_ID, params.remote_cluster_id.as_str()),
        (
            "node.kubernetes.io/exclude-from-external-load-balancers",
            TRUE,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if labels.get("kubernetes.io/arch").map(String::as_str) == Some("x86_64") {
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
    } else if labels.get("kubernetes.io/arch").map(String::as_str) == Some("aarch64") {
        labels.insert("kubernetes.io/arch".into(), "arm64".into());
    }
    let own: Vec<(String, String)> = [
        "kubernetes.io/hostname",
        core::TYPE,
        "type",
        core::REMOTE_CLUSTER_ID,
    ]
    .iter()
    .filter_map(|k| labels.get(*k).map(|v| ((*k).to_owned(), v.clone())))
    .collect();
    labels.extend(params.extra_labels.clone());
    labels.extend(vn.spec.labels.clone());
    // The identity of the node is its own: no extra or spec label overrides it.
    labels.extend(own);
    labels
}

/// The Node to create for `vn`: name, labels, annotations, taints (the virtual-node taint
/// plus `spec.taints`). Its status comes from [`node_status`].
pub fn forge_node(vn: &VirtualNode, params: &NodeParams) -> Node {
    let mut taints = vec![virtual_node_taint()];
    taints.extend(vn.spec.taints.iter().cloned());
    let labels = node_labels(vn, params);
    let mut annotations = vn.spec.annotations.clone();
    annotations.insert(
        MANAGED_LABELS_ANNOTATION.to_owned(),
        labels.keys().cloned().collect::<Vec<_>>().join(","),
    );
    Node {
        metadata: ObjectMeta {
            name: Some(params.name.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// Annotation of the Node with the keys of the labels the virtual kubelet set (comma
/// separated): a label that leaves the VirtualNode (for example a cluster label the provider
/// dropped) is removed from the Node, while labels others added stay.
pub const MANAGED_LABELS_ANNOTATION: &str = "virtual-kubelet.liqo.io/managed-labels";

/// The labels of `current` that the virtual kubelet set and `desired` no longer has (pure).
///
/// ```
/// use k8s_openapi::api::core::v1::Node;
/// use liqo_reflect::virtual_kubelet::node::{MANAGED_LABELS_ANNOTATION, stale_labels};
///
/// let mut current = Node::default();
/// current.metadata.labels = Some([("a", "1"), ("b", "2"), ("mine", "x")]
///     .map(|(k, v)| (k.to_owned(), v.to_owned())).into());
/// current.metadata.annotations =
///     Some([(MANAGED_LABELS_ANNOTATION.to_owned(), "a,b".to_owned())].into());
/// let mut desired = Node::default();
/// desired.metadata.labels = Some([("a".to_owned(), "1".to_owned())].into());
/// assert_eq!(stale_labels(&current, &desired), vec!["b".to_owned()]);
/// ```
pub fn stale_labels(current: &Node, desired: &Node) -> Vec<String> {
    let managed = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_LABELS_ANNOTATION))
        .map(String::as_str)
        .unwrap_or_default();
    let has = |node: &Node, key: &str| {
        node.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(key))
    };
    managed
        .split(',')
        .filter(|k| !k.is_empty() && has(current, k) && !has(desired, k))
        .map(str::to_owned)
        .collect()
}

/// The resources the VirtualNode offers (`spec.resourceQuota.hard`).
pub fn node_resources(vn: &VirtualNode) -> BTreeMap<String, Quantity> {
    vn.spec
        .resource_quota
        .as_ref()
        .and_then(|q| q.hard.clone())
        .unwrap_or_default()
}

/// Whether a quantity is strictly positive (`"0"`, `"0m"`, `""` and unparsable ones are not).
pub fn quantity_is_positive(quantity: &Quantity) -> bool {
    let digits: String = quantity
        .0
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse::<f64>().is_ok_and(|v| v > 0.0)
}

/// Whether the VirtualNode offers some CPU and some memory.
pub fn resources_ready(resources: &BTreeMap<String, Quantity>) -> bool {
    ["cpu", "memory"]
        .iter()
        .all(|r| resources.get(*r).is_some_and(quantity_is_positive))
}

/// The health of the provider as seen by the periodic checks of its API server.
///
/// It starts not ready; the first successful check makes it ready, `threshold` consecutive
/// failures make it not ready again.
///
/// ```
/// use liqo_reflect::virtual_kubelet::node::Health;
///
/// let mut health = Health::new(3);
/// assert!(!health.is_ready());
/// assert!(health.observe(true)); // changed: now ready
/// assert!(!health.observe(false));
/// assert!(!health.observe(false));
/// assert!(health.is_ready());
/// assert!(health.observe(false)); // third failure in a row
/// assert!(!health.is_ready());
/// assert!(health.observe(true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    threshold: u32,
    failures: u32,
    ready: bool,
    last_error: Option<String>,
}

impl Health {
    /// A health that turns not ready after `threshold` consecutive failures (at least 1).
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: 0,
            ready: false,
            last_error: None,
        }
    }

    /// Records the outcome of one check. Returns whether readiness changed.
    pub fn observe(&mut self, ok: bool) -> bool {
        let before = self.ready;
        if ok {
            self.failures = 0;
            self.last_error = None;
            self.ready = true;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.threshold {
                self.ready = false;
            }
        }
        before != self.ready
    }

    /// Records a failed check with its error. Returns whether readiness changed.
    pub fn observe_error(&mut self, error: impl Into<String>) -> bool {
        let changed = self.observe(false);
        self.last_error = Some(error.into());
        changed
    }

    /// Whether the provider is considered reachable.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Consecutive failed checks.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The error of the last failed check, while failing.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &Timestamp,
    previous: Option<&Vec<NodeCondition>>,
) -> NodeCondition {
    let status = if status { "True" } else { "False" };
    let transition = previous
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(*now));
    NodeCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(*now)),
        last_transition_time: Some(transition),
    }
}

/// The status of the virtual Node: capacity = allocatable = the VirtualNode's resources,
/// address, kubelet endpoint, node info and conditions (`Ready` when the provider is healthy
/// and offers CPU and memory; `MemoryPressure`, `DiskPressure`, `PIDPressure` when it offers
/// none). `previous` keeps the transition times of unchanged conditions.
pub fn node_status(
    vn: &VirtualNode,
    params: &NodeParams,
    health: &Health,
    previous: Option<&NodeStatus>,
    now: Timestamp,
) -> NodeStatus {
    let resources = node_resources(vn);
    let has_resources = resources_ready(&resources);
    let previous = previous.and_then(|s| s.conditions.as_ref());
    let (ready, reason, message) = match (health.is_ready(), has_resources) {
        (true, true) => (
            true,
            "KubeletReady",
            format!("cluster {} is reachable", params.remote_cluster_id),
        ),
        (false, _) => (
            false,
            REASON_REMOTE_UNREACHABLE,
            match health.last_error() {
                Some(e) => format!(
                    "the API server of cluster {} does not answer: {e}",
                    params.remote_cluster_id
                ),
                None => format!(
                    "the API server of cluster {} has not answered yet",
                    params.remote_cluster_id
                ),
            },
        ),
        (true, false) => (
            false,
            REASON_NO_RESOURCES,
            "the VirtualNode offers no cpu or memory (spec.resourceQuota.hard)".to_owned(),
        ),
    };
    let pressure = |type_: &str| {
        condition(
            type_,
            !has_resources,
            if has_resources {
                "ResourcesAvailable"
            } else {
                REASON_NO_RESOURCES
            },
            if has_resources {
                "the provider offers resources"
            } else {
                "the provider offers no resources"
            },
            &now,
            previous,
        )
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition("Ready", ready, reason, &message, &now, previous),
            pressure("MemoryPressure"),
            pressure("DiskPressure"),
            pressure("PIDPressure"),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_owned(),
                address: params.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_owned(),
                address: params.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(params.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH.to_owned(),
            kubelet_version: params.kubelet_version.clone(),
            kube_proxy_version: String::new(),
            operating_system: "linux".to_owned(),
            os_image: format!("liqo provider {}", params.remote_cluster_id),
            kernel_version: String::new(),
            container_runtime_version: "liqo://virtual-kubelet".to_owned(),
            machine_id: String::new(),
            system_uuid: String::new(),
            boot_id: String::new(),
            ..NodeSystemInfo::default()
        }),
        images: (!vn.spec.images.is_empty()).then(|| vn.spec.images.clone()),
        // The kubelet API speaks WebSockets: the API server proxies exec/attach as they are.
        declared_features: Some(vec![
            super::kubelet_api::WEBSOCKETS_TO_KUBELET_FEATURE.to_owned(),
        ]),
        ..NodeStatus::default()
    }
}

/// Whether two statuses differ in something other than heartbeat times.
fn status_differs(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        if let Some(cs) = s.conditions.as_mut() {
            for c in cs.iter_mut() {
                c.last_heartbeat_time = None;
                c.last_transition_time = None;
            }
            cs.sort_by(|x, y| x.type_.cmp(&y.type_));
        }
        s.node_info = None;
        s
    };
    let (a, b) = (strip(a), strip(b));
    a.capacity != b.capacity
        || a.allocatable != b.allocatable
        || a.conditions != b.conditions
        || a.addresses != b.addresses
        || a.images != b.images
}

/// How the node loop behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoopConfig {
    /// Name of the VirtualNode (and of the Node).
    pub virtual_node: String,
    /// Namespace of the VirtualNode.
    pub namespace: String,
    /// How the Node is built.
    pub params: NodeParams,
    /// Interval between two health checks of the remote API server.
    pub ping_interval: Duration,
    /// Timeout of one health check.
    pub ping_timeout: Duration,
    /// Consecutive failed checks that make the Node NotReady.
    pub failure_threshold: u32,
    /// Duration of the node Lease; it is renewed every quarter of it.
    pub lease_duration: Duration,
    /// Maximum interval between two writes of the Node status (heartbeat), even unchanged.
    pub status_update_interval: Duration,
}

/// Checks once that the remote API server answers, within `timeout`.
pub async fn ping(remote: &Client, timeout: Duration) -> std::result::Result<(), String> {
    match tokio::time::timeout(timeout, remote.apiserver_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Keeps the virtual Node in the home cluster: creates it, keeps labels and taints, writes its
/// status (on every change and at least every `status_update_interval`) and renews its Lease.
/// Runs until `shutdown` resolves; errors are logged and retried at the next tick.
pub async fn run_node(
    home: Client,
    remote: Client,
    config: NodeLoopConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut health = Health::new(config.failure_threshold);
    let nodes: Api<Node> = Api::all(home.clone());
    let leases: Api<Lease> = Api::namespaced(home.clone(), NODE_LEASE_NAMESPACE);
    let vns: Api<VirtualNode> = Api::namespaced(home.clone(), &config.namespace);
    let mut ping_tick = tokio::time::interval(config.ping_interval.max(Duration::from_millis(100)));
    ping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status_write: Option<tokio::time::Instant> = None;
    let mut last_lease: Option<tokio::time::Instant> = None;
    let lease_renew = config.lease_duration / 4;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ping_tick.tick() => {}
        }
        let changed = match ping(&remote, config.ping_timeout).await {
            Ok(()) => health.observe(true),
            Err(e) => {
                debug!(error = %e, "remote API server check failed");
                health.observe_error(e)
            }
        };
        if changed {
            info!(node = %config.params.name, ready = health.is_ready(), "provider health changed");
        }
        let vn = match vns.get_opt(&config.virtual_node).await {
            Ok(Some(vn)) => vn,
            Ok(None) => {
                warn!(virtual_node = %config.virtual_node, namespace = %config.namespace, "the VirtualNode does not exist (any more)");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "cannot read the VirtualNode");
                continue;
            }
        };
        let node = match ensure_node(&nodes, &vn, &config.params).await {
            Ok(node) => node,
            Err(e) => {
                warn!(error = %e, "cannot create or update the virtual Node");
                continue;
            }
        };
        let status = node_status(
            &vn,
            &config.params,
            &health,
            node.status.as_ref(),
            Timestamp::now(),
        );
        let due = last_status_write.is_none_or(|t| t.elapsed() >= config.status_update_interval);
        let differs = node
            .status
            .as_ref()
            .is_none_or(|s| status_differs(s, &status));
        if due || differs {
            let patch = serde_json::json!({ "status": status });
            match nodes
                .patch_status(
                    &config.params.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => last_status_write = Some(tokio::time::Instant::now()),
                Err(e) => warn!(error = %e, "cannot write the virtual Node status"),
            }
        }
        if last_lease.is_none_or(|t| t.elapsed() >= lease_renew) {
            match renew_lease(&leases, &node, config.lease_duration).await {
                Ok(()) => last_lease = Some(tokio::time::Instant::now()),
                Err(e) => warn!(error = %e, "cannot renew the node Lease"),
            }
        }
    }
}

/// Creates the Node, or brings its labels, annotations and the virtual-node taints up to date
/// without removing what others added (e.g. the node lifecycle controller's taints).
async fn ensure_node(nodes: &Api<Node>, vn: &VirtualNode, params: &NodeParams) -> Result<Node> {
    let desired = forge_node(vn, params);
    let Some(current) = nodes
        .get_opt(&params.name)
        .await
        .map_err(Error::kube(format!("reading Node {}", params.name)))?
    else {
        info!(node = %params.name, "creating the virtual Node");
        return nodes
            .create(&PostParams::default(), &desired)
            .await
            .map_err(Error::kube(format!("creating Node {}", params.name)));
    };
    let missing_labels = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .any(|(k, v)| current.metadata.labels.as_ref().and_then(|l| l.get(k)) != Some(v));
    let missing_annotations = desired
        .metadata
        .annotations
        .iter()
        .flatten()
        .any(|(k, v)| current.metadata.annotations.as_ref().and_then(|l| l.get(k)) != Some(v));
    let current_taints = current
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let desired_taints = desired
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let missing_taints: Vec<Taint> = desired_taints
        .into_iter()
        .filter(|t| {
            !current_taints
                .iter()
                .any(|c| c.key == t.key && c.value == t.value && c.effect == t.effect)
        })
        .collect();
    let stale = stale_labels(&current, &desired);
    if !missing_labels && !missing_annotations && missing_taints.is_empty() && stale.is_empty() {
        return Ok(current);
    }
    let mut labels =
        serde_json::to_value(desired.metadata.labels.unwrap_or_default()).unwrap_or_default();
    for key in stale {
        labels[key] = serde_json::Value::Null;
    }
    let mut patch = serde_json::json!({
        "metadata": {
            "labels": labels,
            "annotations": desired.metadata.annotations.unwrap_or_default(),
        },
    });
    if !missing_taints.is_empty() {
        let mut taints: Vec<Taint> = current_taints
            .into_iter()
            .filter(|c| {
                !missing_taints
                    .iter()
                    .any(|t| t.key == c.key && t.effect == c.effect)
            })
            .collect();
        taints.extend(missing_taints);
        patch["spec"] = serde_json::json!({ "taints": taints });
    }
    nodes
        .patch(&params.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube(format!("updating Node {}", params.name)))
}

/// Renews (or creates) the node Lease in `kube-node-lease`, owned by the Node.
async fn renew_lease(leases: &Api<Lease>, node: &Node, duration: Duration) -> Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: Node::api_version(&()).into_owned(),
        kind: Node::kind(&()).into_owned(),
        name: name.clone(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        ..OwnerReference::default()
    };
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.clone()),
            lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(40)),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases
        .patch(
            &name,
            &PatchParams::apply(NODE_FIELD_MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await
        .map_err(Error::kube(format!(
            "renewing Lease {NODE_LEASE_NAMESPACE}/{name}"
        )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceQuotaSpec;
    use liqo_core::api::offloading::v1beta1::VirtualNodeSpec;

    fn vn(cpu: &str) -> VirtualNode {
        let mut vn = VirtualNode::new(
            "milan",
            VirtualNodeSpec {
                cluster_id: Some("milan".into()),
                resource_quota: Some(ResourceQuotaSpec {
                    hard: Some(
                        [
                            ("cpu".to_owned(), Quantity(cpu.into())),
                            ("memory".to_owned(), Quantity("8Gi".into())),
                            ("pods".to_owned(), Quantity("110".into())),
                        ]
                        .into(),
                    ),
                    ..ResourceQuotaSpec::default()
                }),
                labels: [("topology.liqo.io/region".to_owned(), "north".to_owned())].into(),
                ..VirtualNodeSpec::default()
            },
        );
        vn.metadata.namespace = Some("liqo-tenant-milan".into());
        vn
    }

    fn params() -> NodeParams {
        NodeParams {
            name: "milan".into(),
            remote_cluster_id: "milan".parse().unwrap(),
            node_ip: "10.0.0.7".parse().unwrap(),
            kubelet_port: 10250,
            kubelet_version: "v1.36.0".into(),
            extra_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn node_has_the_virtual_node_labels_and_taint() {
        let node = forge_node(&vn("4"), &params());
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["liqo.io/type"], "virtual-node");
        assert_eq!(labels["liqo.io/remote-cluster-id"], "milan");
        assert_eq!(labels["kubernetes.io/hostname"], "milan");
        assert_eq!(labels["type"], "virtual-kubelet");
        assert_eq!(labels["topology.liqo.io/region"], "north");
        let taints = node.spec.unwrap().taints.unwrap();
        assert_eq!(taints, vec![virtual_node_taint()]);
        assert_eq!(taints[0].key, "virtual-node.liqo.io/not-allowed");
        assert_eq!(taints[0].effect, "NoExecute");
    }

    #[test]
    fn status_follows_resources_and_health() {
        let mut health = Health::new(2);
        let now = Timestamp::now();
        let status = node_status(&vn("4"), &params(), &health, None, now);
        assert_eq!(status.capacity, status.allocatable);
        assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, "4");
        let ready = |s: &NodeStatus| {
            let c = s.conditions.as_ref().unwrap();
            let r = c.iter().find(|c| c.type_ == "Ready").unwrap();
            (r.status.clone(), r.reason.clone().unwrap())
        };
        assert_eq!(
            ready(&status),
            ("False".into(), REASON_REMOTE_UNREACHABLE.into())
        );
        health.observe(true);
        let ok = node_status(&vn("4"), &params(), &health, Some(&status), now);
        assert_eq!(ready(&ok).0, "True");
        assert!(status_differs(&status, &ok));
        assert!(!status_differs(&ok, &ok.clone()));
        let empty = node_status(&vn("0"), &params(), &health, Some(&ok), now);
        assert_eq!(ready(&empty), ("False".into(), REASON_NO_RESOURCES.into()));
        let pressure = empty
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "MemoryPressure")
            .unwrap();
        assert_eq!(pressure.status, "True");
        assert_eq!(
            status.addresses.unwrap()[0].address,
            "10.0.0.7",
            "InternalIP is the virtual kubelet's address"
        );
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let mut health = Health::new(1);
        health.observe(true);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = node_status(&vn("4"), &params(), &health, None, t0);
        let second = node_status(&vn("4"), &params(), &health, Some(&first), t1);
        let ready = |s: &NodeStatus| {
            s.conditions
                .clone()
                .unwrap()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .unwrap()
        };
        assert_eq!(ready(&second).last_transition_time, Some(Time(t0)));
        assert_eq!(ready(&second).last_heartbeat_time, Some(Time(t1)));
        health.observe(false);
        let third = node_status(&vn("4"), &params(), &health, Some(&second), t1);
        assert_eq!(ready(&third).status, "False");
        assert_eq!(ready(&third).last_transition_time, Some(Time(t1)));
    }

    #[test]
    fn quantities() {
        for (q, positive) in [
            ("0", false),
            ("0m", false),
            ("", false),
            ("100m", true),
            ("2", true),
            ("1.5Gi", true),
        ] {
            assert_eq!(quantity_is_positive(&Quantity(q.into())), positive, "{q}");
        }
    }
}
