//! Controllers of the `ipam.liqo.io/v1alpha1` Network and IP resources.
//!
//! The API server is the source of truth: an allocation exists when it is written in a
//! resource's status. [`run`] therefore
//!
//! 1. rebuilds the allocator from the statuses of every existing Network, then every IP
//!    (acquiring exactly what they record), before it serves anything new;
//! 2. creates (server-side apply) and allocates, in order, the networks every cluster reserves:
//!    its pod CIDRs and service CIDR (used as they are, shared), user-reserved subnets, the
//!    external CIDR (first address reserved: the unknown-source IP) and the internal CIDR;
//! 3. runs one controller per kind: a new resource gets a finalizer, then an allocation written
//!    to its status (with a `Ready` condition saying `Allocated`, `Remapped`, or what is
//!    wrong); a deleted one releases its allocation before the finalizer goes.
//!
//! A status is written with the resource version read just before allocating, so a stale
//! cache can never make the controller allocate twice for one resource; if the write fails,
//! the allocation is released at once. A process killed between allocating and writing loses
//! only in-memory state, which the next start rebuilds from statuses.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use ipnetwork::IpNetwork;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
    runtime::{Controller, controller::Action, watcher},
};
use liqo_core::{
    api::ipam::v1alpha1::{Ip, Network, NetworkSpec},
    api::networking::v1beta1::Cidr,
    labels::{TRUE, ipam as keys},
    runtime::KeyedBackoff,
};
use tracing::{info, warn};

use crate::{Error, IpamAllocator, NetworkRequest, Result};

mod ip;
mod network;

/// Field manager of the IPAM controllers (server-side apply and status writes).
pub const FIELD_MANAGER: &str = "liqo-ipam";

/// What the IPAM controllers reserve and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of the networks every cluster reserves (default `liqo`).
    pub namespace: String,
    /// The local pod CIDRs: used as they are, never handed out.
    pub pod_cidrs: Vec<IpNetwork>,
    /// The local service CIDR: used as is, never handed out.
    pub service_cidr: Option<IpNetwork>,
    /// The external CIDR (default 10.70.0.0/16): local hosts exposed to peers get addresses
    /// from it; its first address is the unknown-source IP.
    pub external_cidr: IpNetwork,
    /// The internal CIDR of the in-cluster fabric (default 10.80.0.0/16).
    pub internal_cidr: IpNetwork,
    /// Further subnets never handed out (node networks, ...).
    pub reserved: Vec<IpNetwork>,
    /// Concurrent reconciles per controller (default 4).
    pub workers: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: "liqo".to_owned(),
            pod_cidrs: Vec::new(),
            service_cidr: None,
            external_cidr: v4_slash16(70),
            internal_cidr: v4_slash16(80),
            reserved: Vec::new(),
            workers: 4,
        }
    }
}

/// `10.<second>.0.0/16`.
fn v4_slash16(second: u8) -> IpNetwork {
    let addr = std::net::Ipv4Addr::new(10, second, 0, 0);
    // A /16 is always a valid IPv4 prefix length; the fallback is unreachable.
    ipnetwork::Ipv4Network::new(addr, 16)
        .map(IpNetwork::V4)
        .unwrap_or(IpNetwork::V4(addr.into()))
}

/// Name of the Network of the external CIDR.
pub const EXTERNAL_CIDR_NETWORK: &str = "external-cidr";
/// Name of the Network of the internal CIDR.
pub const INTERNAL_CIDR_NETWORK: &str = "internal-cidr";

pub(crate) struct Context {
    pub(crate) client: Client,
    pub(crate) allocator: Arc<dyn IpamAllocator>,
    pub(crate) config: Config,
    pub(crate) network_backoff: KeyedBackoff<kube::runtime::reflector::ObjectRef<Network>>,
    pub(crate) ip_backoff: KeyedBackoff<kube::runtime::reflector::ObjectRef<Ip>>,
}

/// Rebuilds `allocator` from the resources, reserves the required networks, then runs the
/// Network and IP controllers until `shutdown` resolves.
///
/// ```no_run
/// # async fn run(client: kube::Client) -> liqo_ipam::Result<()> {
/// use std::sync::Arc;
/// use liqo_ipam::{TreeAllocator, controller};
///
/// let config = controller::Config {
///     pod_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
///     service_cidr: Some("10.96.0.0/12".parse().unwrap()),
///     ..controller::Config::default()
/// };
/// let allocator = Arc::new(TreeAllocator::with_default_pools());
/// controller::run(client, allocator, config, liqo_core::runtime::shutdown_signal()).await
/// # }
/// ```
pub async fn run(
    client: Client,
    allocator: Arc<dyn IpamAllocator>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let ctx = Arc::new(Context {
        client: client.clone(),
        allocator,
        config,
        network_backoff: KeyedBackoff::default(),
        ip_backoff: KeyedBackoff::default(),
    });
    rebuild(&ctx).await?;
    reserve_required_networks(&ctx).await?;

    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let workers = ctx.config.workers.max(1);
    let networks = Controller::new(
        Api::<Network>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(workers))
    .graceful_shutdown_on(shutdown.clone())
    .run(network::reconcile, network::error_policy, ctx.clone())
    .for_each(|_| std::future::ready(()));
    let ips = Controller::new(Api::<Ip>::all(client), watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(workers))
        .graceful_shutdown_on(shutdown)
        .run(ip::reconcile, ip::error_policy, ctx)
        .for_each(|_| std::future::ready(()));
    info!("IPAM controllers running");
    futures::join!(networks, ips);
    info!("IPAM controllers stopped");
    Ok(())
}

/// Acquires, in `allocator`, every network and address recorded in the status of existing
/// Network and IP resources. Returns how many of each were restored.
pub(crate) async fn rebuild(ctx: &Context) -> Result<(usize, usize)> {
    let networks = Api::<Network>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing Networks"))?;
    let mut restored_networks = 0;
    for net in &networks.items {
        let Some(cidr) = net.status.as_ref().and_then(|s| s.cidr.as_ref()) else {
            continue;
        };
        let Ok(cidr) = cidr.as_str().parse::<IpNetwork>() else {
            warn!(network = %net.name_any(), %cidr, "ignoring an unparsable status.cidr");
            continue;
        };
        let mut req = NetworkRequest::new(cidr).immutable();
        if is_shared(net) {
            req = req.shared();
        }
        req = req.pre_allocated(net.spec.pre_allocated);
        match ctx.allocator.acquire_network(req).await {
            Ok(_) => restored_networks += 1,
            Err(e) => {
                warn!(network = %net.name_any(), %cidr, error = %e, "cannot restore an allocation")
            }
        }
    }
    let ips = Api::<Ip>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing IPs"))?;
    let mut restored_ips = 0;
    for ip in &ips.items {
        let Some(status) = ip.status.as_ref() else {
            continue;
        };
        let (Some(addr), Some(cidr)) = (status.ip.as_ref(), status.cidr.as_ref()) else {
            continue;
        };
        let (Ok(addr), Ok(cidr)) = (addr.as_str().parse(), cidr.as_str().parse()) else {
            warn!(ip = %ip.name_any(), "ignoring an unparsable status");
            continue;
        };
        match ctx.allocator.acquire_ip(cidr, Some(addr)).await {
            Ok(_) => restored_ips += 1,
            Err(e) => warn!(ip = %ip.name_any(), %addr, error = %e, "cannot restore an allocation"),
        }
    }
    info!(
        networks = restored_networks,
        ips = restored_ips,
        "IPAM state rebuilt from resources"
    );
    Ok((restored_networks, restored_ips))
}

/// A Network every cluster reserves.
struct Required {
    name: String,
    cidr: IpNetwork,
    network_type: &'static str,
    not_remapped: bool,
    shared: bool,
    pre_allocated: u32,
}

fn required_networks(config: &Config) -> Vec<Required> {
    let mut out = Vec::new();
    let fixed = |name: String, cidr: IpNetwork, network_type: &'static str| Required {
        name,
        cidr,
        network_type,
        not_remapped: true,
        shared: true,
        pre_allocated: 0,
    };
    for cidr in &config.pod_cidrs {
        let name = if config.pod_cidrs.len() == 1 {
            "pod-cidr".to_owned()
        } else {
            format!("pod-cidr-{}", escape(*cidr))
        };
        out.push(fixed(name, *cidr, keys::NETWORK_TYPE_POD_CIDR));
    }
    if let Some(cidr) = config.service_cidr {
        out.push(fixed(
            "service-cidr".to_owned(),
            cidr,
            keys::NETWORK_TYPE_SERVICE_CIDR,
        ));
    }
    for cidr in &config.reserved {
        out.push(fixed(
            format!("reserved-{}", escape(*cidr)),
            *cidr,
            keys::NETWORK_TYPE_RESERVED,
        ));
    }
    out.push(Required {
        name: EXTERNAL_CIDR_NETWORK.to_owned(),
        cidr: config.external_cidr,
        network_type: keys::NETWORK_TYPE_EXTERNAL_CIDR,
        not_remapped: false,
        shared: false,
        pre_allocated: 1,
    });
    out.push(Required {
        name: INTERNAL_CIDR_NETWORK.to_owned(),
        cidr: config.internal_cidr,
        network_type: keys::NETWORK_TYPE_INTERNAL_CIDR,
        not_remapped: false,
        shared: false,
        pre_allocated: 0,
    });
    out
}

/// `10.0.0.0/16` -> `10-0-0-0-16`, usable in resource names.
///
/// ```
/// let cidr = "10.0.0.0/16".parse().unwrap();
/// assert_eq!(liqo_ipam::controller::escape(cidr), "10-0-0-0-16");
/// ```
#[must_use]
pub fn escape(cidr: IpNetwork) -> String {
    cidr.to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

async fn reserve_required_networks(ctx: &Context) -> Result<()> {
    let ns = &ctx.config.namespace;
    let namespace = k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client.clone())
        .patch(
            ns,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&namespace),
        )
        .await
        .map_err(kube_err(format!("creating namespace {ns}")))?;
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), ns);
    for req in required_networks(&ctx.config) {
        let mut labels = std::collections::BTreeMap::from([(
            keys::NETWORK_TYPE.to_owned(),
            req.network_type.to_owned(),
        )]);
        if req.not_remapped {
            labels.insert(keys::NETWORK_NOT_REMAPPED.to_owned(), TRUE.to_owned());
        }
        if req.shared {
            labels.insert(keys::NETWORK_SHARED.to_owned(), TRUE.to_owned());
        }
        let mut network = Network::new(
            &req.name,
            NetworkSpec {
                cidr: Cidr(req.cidr.to_string()),
                pre_allocated: req.pre_allocated,
            },
        );
        network.metadata.labels = Some(labels);
        api.patch(
            &req.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&network),
        )
        .await
        .map_err(kube_err(format!("creating Network {ns}/{}", req.name)))?;
        // Allocate it now, before any peer network can take its range.
        let current = api
            .get(&req.name)
            .await
            .map_err(kube_err(format!("reading Network {ns}/{}", req.name)))?;
        network::ensure_finalizer(&api, &current).await?;
        network::allocate(ctx, &api, &current).await?;
        info!(network = %req.name, cidr = %req.cidr, "reserved");
    }
    Ok(())
}

pub(crate) fn is_shared(net: &Network) -> bool {
    net.labels()
        .get(keys::NETWORK_SHARED)
        .is_some_and(|v| v == TRUE)
}

pub(crate) fn is_not_remapped(net: &Network) -> bool {
    net.labels()
        .get(keys::NETWORK_NOT_REMAPPED)
        .is_some_and(|v| v == TRUE)
}

pub(crate) fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let context = context.into();
    move |source| Error::Kube { context, source }
}

/// Converts the error of kube-runtime's finalizer helper into ours.
pub(crate) fn from_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Error {
    use kube::runtime::finalizer::Error as F;
    match e {
        F::ApplyFailed(e) | F::CleanupFailed(e) => e,
        F::AddFinalizer(source) => Error::Kube {
            context: "adding the IPAM finalizer".to_owned(),
            source,
        },
        F::RemoveFinalizer(source) => Error::Kube {
            context: "removing the IPAM finalizer".to_owned(),
            source,
        },
        other => Error::InvalidResource {
            kind: "resource",
            name: String::new(),
            reason: other.to_string(),
        },
    }
}

/// A short CamelCase reason for a status condition.
pub(crate) fn reason(e: &Error) -> &'static str {
    match e {
        Error::InvalidCidr { .. } => "InvalidCIDR",
        Error::InvalidPrefixLength { .. } => "InvalidPrefixLength",
        Error::PoolExhausted { .. } => "PoolExhausted",
        Error::Unavailable { .. } => "Unavailable",
        Error::OutsidePools(_) => "OutsidePools",
        Error::NotAllocated(_) => "NetworkNotAllocated",
        Error::IpOutsideNetwork { .. } => "IPOutsideNetwork",
        Error::IpUnavailable { .. } => "IPUnavailable",
        Error::NetworkFull(_) => "NetworkFull",
        Error::PreAllocatedTooLarge { .. } => "PreAllocatedTooLarge",
        Error::FamilyMismatch { .. } => "FamilyMismatch",
        Error::InvalidResource { .. } => "InvalidSpec",
        _ => "AllocationFailed",
    }
}

/// Writes `status` (merge patch), failing with a conflict if `obj` changed since it was read:
/// a decision taken on a stale object is never recorded.
pub(crate) async fn write_status<K>(
    api: &Api<K>,
    obj: &K,
    status: &impl serde::Serialize,
) -> Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": obj.resource_version() },
        "status": status,
    });
    let name = obj.name_any();
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!(
            "writing the status of {} {name}",
            K::kind(&())
        )))?;
    Ok(())
}

/// Requeue delay after an error that a retry may fix.
pub(crate) const RETRY: Duration = Duration::from_secs(30);

pub(crate) fn await_change() -> Action {
    Action::await_change()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_are_valid() {
        assert_eq!(escape("10.0.0.0/16".parse().unwrap()), "10-0-0-0-16");
        assert_eq!(escape("fd00::/64".parse().unwrap()), "fd00---64");
    }

    #[test]
    fn required_networks_come_in_order_with_upstream_labels() {
        let config = Config {
            pod_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
            service_cidr: Some("10.96.0.0/12".parse().unwrap()),
            reserved: vec!["192.168.1.0/24".parse().unwrap()],
            ..Config::default()
        };
        let names: Vec<String> = required_networks(&config)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            names,
            [
                "pod-cidr",
                "service-cidr",
                "reserved-192-168-1-0-24",
                "external-cidr",
                "internal-cidr"
            ]
        );
        let external = required_networks(&config)
            .into_iter()
            .find(|r| r.name == "external-cidr")
            .unwrap();
        assert_eq!(external.cidr.to_string(), "10.70.0.0/16");
        assert_eq!(external.pre_allocated, 1);
        assert!(!external.shared && !external.not_remapped);
    }
}
