//! ForeignCluster: the summary board of a peering, derived from what the tenant namespace of
//! the peer holds. [`summarize`] is the pure part; the controller only gathers and writes.
//!
//! ```
//! use liqo_auth::controller::foreigncluster::{PeerView, summarize, module_state};
//! use liqo_core::api::core::v1beta1::RoleType;
//!
//! // Nothing in the tenant namespace: no ForeignCluster.
//! assert!(summarize(&PeerView::default()).is_none());
//!
//! let view = PeerView { control_plane_kubeconfig: Some("https://milan:6443".into()),
//!                       has_control_plane_identity: true, ..PeerView::default() };
//! let status = summarize(&view).unwrap();
//! assert_eq!(status.role, RoleType::Provider);
//! assert_eq!(module_state(&status.modules.unwrap().authentication), "Established");
//! ```

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{Identity, ResourceSlice, Tenant};
use liqo_core::api::core::v1beta1::{
    Condition, ConditionStatusType as CS, ConditionType as CT, ForeignCluster,
    ForeignClusterStatus, Module, Modules, RoleType, TenantNamespaceType,
};
use liqo_core::api::networking::v1beta1::{
    Configuration, Connection, ConnectionStatusValue, GatewayClient, GatewayServer,
};
use liqo_core::api::offloading::v1beta1::VirtualNode;
use liqo_core::ids::ClusterId;
use liqo_core::labels::{self, authentication as auth_keys};

use super::resourceslice::resources_accepted;
use super::{Context, ShutdownFuture, apply_params, drain, is_404, namespace_ref};
use crate::error::{Error, Result};
use crate::{forge, kubeconfig, names};

/// What the tenant namespace of a peer holds, as far as the summary is concerned.
#[derive(Debug, Clone, Default)]
pub struct PeerView {
    /// The local tenant namespace.
    pub tenant_namespace: Option<String>,
    /// The peer is a consumer of this cluster: its Tenant.
    pub tenant: Option<Tenant>,
    /// This cluster consumes from the peer: `Identity controlplane-<peer>` exists.
    pub has_control_plane_identity: bool,
    /// The API server of the peer, from the control-plane kubeconfig (when it exists).
    pub control_plane_kubeconfig: Option<String>,
    /// Our tenant namespace on the peer.
    pub remote_tenant_namespace: Option<String>,
    /// ResourceSlices this cluster asked the peer for.
    pub local_slices: Vec<ResourceSlice>,
    /// ResourceSlices the peer asked this cluster for (replicas).
    pub replica_slices: Vec<ResourceSlice>,
    /// VirtualNodes standing for the peer.
    pub virtual_nodes: Vec<VirtualNode>,
    /// Whether the networking module is enabled locally.
    pub networking_enabled: bool,
    /// The Configuration of the peer.
    pub configuration: Option<Configuration>,
    /// Whether a GatewayServer / GatewayClient exists for the peer.
    pub gateway_server: bool,
    /// See [`Self::gateway_server`].
    pub gateway_client: bool,
    /// Connections in the tenant namespace.
    pub connections: Vec<Connection>,
}

fn condition(type_: CT, status: CS, message: &str) -> Condition {
    Condition {
        type_,
        status,
        last_transition_time: None,
        reason: None,
        message: Some(message.to_owned()),
    }
}

/// The one-word state of a module: `Disabled`, `Error`, `Pending` or `Established`.
pub fn module_state(module: &Module) -> &'static str {
    if !module.enabled {
        "Disabled"
    } else if module.conditions.iter().any(|c| c.status == CS::Error) {
        "Error"
    } else if module
        .conditions
        .iter()
        .any(|c| !matches!(c.status, CS::Established | CS::Ready))
    {
        "Pending"
    } else {
        "Established"
    }
}

/// The ForeignCluster status of a peer, or `None` when nothing links the clusters any more.
pub fn summarize(view: &PeerView) -> Option<ForeignClusterStatus> {
    let consumer_of_peer = view.has_control_plane_identity || !view.local_slices.is_empty();
    let provider_for_peer = view.tenant.is_some() || !view.replica_slices.is_empty();
    let networking = view.configuration.is_some()
        || view.gateway_server
        || view.gateway_client
        || !view.connections.is_empty();
    if !consumer_of_peer && !provider_for_peer && !networking && view.virtual_nodes.is_empty() {
        return None;
    }
    let role = match (consumer_of_peer, provider_for_peer) {
        (true, true) => RoleType::ConsumerAndProvider,
        (true, false) => RoleType::Provider,
        (false, true) => RoleType::Consumer,
        (false, false) => RoleType::Unknown,
    };

    let mut auth = Module {
        enabled: consumer_of_peer || provider_for_peer,
        conditions: Vec::new(),
    };
    if view.has_control_plane_identity {
        auth.conditions
            .push(if view.control_plane_kubeconfig.is_some() {
                condition(
                    CT::AuthIdentityControlPlaneStatus,
                    CS::Established,
                    "control-plane identity ready",
                )
            } else {
                condition(
                    CT::AuthIdentityControlPlaneStatus,
                    CS::Pending,
                    "waiting for the kubeconfig of the control-plane identity",
                )
            });
    }
    if let Some(t) = &view.tenant {
        let issued = t
            .status
            .as_ref()
            .and_then(|s| s.auth_params.as_ref())
            .is_some();
        auth.conditions.push(if issued {
            condition(
                CT::AuthTenantStatus,
                CS::Established,
                "tenant authenticated",
            )
        } else {
            condition(
                CT::AuthTenantStatus,
                CS::Pending,
                "tenant not verified yet (see its events)",
            )
        });
    }

    let mut offloading = Module {
        enabled: !view.local_slices.is_empty()
            || view.replica_slices.iter().any(resources_accepted),
        conditions: Vec::new(),
    };
    if !view.local_slices.is_empty() {
        let denied = view.local_slices.iter().find(|s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| {
                    c.status
                        == liqo_core::api::authentication::v1beta1::ResourceSliceConditionStatus::Denied
                })
            })
        });
        let missing = view.local_slices.iter().filter(|s| {
            !view
                .virtual_nodes
                .iter()
                .any(|vn| vn.metadata.name == s.metadata.name)
        });
        offloading.conditions.push(if let Some(d) = denied {
            let msg = d
                .status
                .as_ref()
                .and_then(|st| st.conditions.iter().find_map(|c| c.message.clone()))
                .unwrap_or_default();
            condition(CT::OffloadingVirtualNodeStatus, CS::Error, &msg)
        } else if missing.count() > 0 {
            condition(
                CT::OffloadingVirtualNodeStatus,
                CS::Pending,
                "waiting for the provider to accept the ResourceSlice",
            )
        } else {
            condition(
                CT::OffloadingVirtualNodeStatus,
                CS::Established,
                "virtual node ready",
            )
        });
    }

    let mut net = Module {
        enabled: view.networking_enabled && networking,
        conditions: Vec::new(),
    };
    if net.enabled {
        let configured = view
            .configuration
            .as_ref()
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.remote.as_ref())
            .is_some();
        net.conditions.push(condition(
            CT::NetworkConfigurationStatus,
            if configured {
                CS::Established
            } else {
                CS::Pending
            },
            if configured {
                "remote CIDRs configured"
            } else {
                "waiting for the Configuration to be processed"
            },
        ));
        let connected = view.connections.iter().any(|c| {
            c.status.as_ref().and_then(|s| s.value) == Some(ConnectionStatusValue::Connected)
        });
        let error = view
            .connections
            .iter()
            .any(|c| c.status.as_ref().and_then(|s| s.value) == Some(ConnectionStatusValue::Error));
        net.conditions.push(condition(
            CT::NetworkConnectionStatus,
            if connected {
                CS::Established
            } else if error {
                CS::Error
            } else {
                CS::Pending
            },
            if connected {
                "tunnel connected"
            } else {
                "tunnel not connected"
            },
        ));
    }

    Some(ForeignClusterStatus {
        observed_generation: None,
        role,
        modules: Some(Modules {
            networking: net,
            authentication: auth,
            offloading,
        }),
        api_server_url: view.control_plane_kubeconfig.clone(),
        foreign_proxy_url: None,
        tenant_namespace: Some(TenantNamespaceType {
            local: view.tenant_namespace.clone(),
            remote: view.remote_tenant_namespace.clone(),
        }),
        conditions: Vec::new(),
    })
}

/// Keeps the transition times of conditions that did not change.
fn keep_times(old: Option<&ForeignClusterStatus>, new: &mut ForeignClusterStatus) {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(modules) = new.modules.as_mut() else {
        return;
    };
    let old_modules = old.and_then(|o| o.modules.as_ref());
    for (name, module) in [
        ("networking", &mut modules.networking),
        ("authentication", &mut modules.authentication),
        ("offloading", &mut modules.offloading),
    ] {
        let previous = old_modules.map(|m| match name {
            "networking" => &m.networking,
            "authentication" => &m.authentication,
            _ => &m.offloading,
        });
        for c in &mut module.conditions {
            c.last_transition_time = previous
                .and_then(|p| {
                    p.conditions
                        .iter()
                        .find(|o| o.type_ == c.type_ && o.status == c.status)
                })
                .and_then(|o| o.last_transition_time.clone())
                .or_else(|| Some(now.clone()));
        }
    }
}

pub(super) async fn run(ctx: Arc<Context>, shutdown: ShutdownFuture) {
    let client = ctx.client.clone();
    let selector = format!("{}={}", labels::core::TENANT_NAMESPACE, labels::TRUE);
    let w = watcher::Config::default;
    drain(
        Controller::new(Api::<Namespace>::all(client.clone()), w().labels(&selector))
            .watches(Api::<Tenant>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .watches(Api::<Identity>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .watches(Api::<ResourceSlice>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .watches(Api::<VirtualNode>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .watches(
                Api::<Secret>::all(client.clone()),
                w().labels(auth_keys::IDENTITY_TYPE),
                |o| namespace_ref(&o),
            )
            .watches(Api::<Configuration>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .watches(Api::<Connection>::all(client.clone()), w(), |o| {
                namespace_ref(&o)
            })
            .graceful_shutdown_on(shutdown)
            .run(
                reconcile,
                |obj: Arc<Namespace>, e: &Error, ctx: Arc<Context>| {
                    ctx.error_policy(obj.as_ref(), e)
                },
                ctx,
            ),
    )
    .await;
}

async fn gather(ctx: &Context, ns: &str, peer: &ClusterId) -> Result<PeerView> {
    let c = ctx.client.clone();
    let err = |what: &str| Error::kube(format!("reading {what} in {ns}"));
    let tenant = Api::<Tenant>::namespaced(c.clone(), ns)
        .get_opt(peer.as_str())
        .await
        .map_err(err("the Tenant"))?
        .filter(|t| t.metadata.deletion_timestamp.is_none());
    let identity = Api::<Identity>::namespaced(c.clone(), ns)
        .get_opt(&names::control_plane_identity(peer))
        .await
        .map_err(err("the Identity"))?
        .filter(|t| t.metadata.deletion_timestamp.is_none());
    let secret = Api::<Secret>::namespaced(c.clone(), ns)
        .get_opt(&names::kubeconfig_secret(&names::control_plane_identity(
            peer,
        )))
        .await
        .map_err(err("the kubeconfig Secret"))?;
    let kubeconfig_server = secret
        .as_ref()
        .and_then(|s| s.data.as_ref()?.get(names::KUBECONFIG_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .and_then(|y| kubeconfig::server_of(&y).ok());
    let remote_ns = secret.as_ref().and_then(|s| {
        s.annotations()
            .get(auth_keys::REMOTE_TENANT_NAMESPACE)
            .cloned()
    });
    let slices = Api::<ResourceSlice>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(err("ResourceSlices"))?
        .items;
    let (replica_slices, local_slices): (Vec<_>, Vec<_>) = slices
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .partition(|s| forge::is_replica(&s.metadata));
    let virtual_nodes = Api::<VirtualNode>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(err("VirtualNodes"))?
        .items;
    let configuration = Api::<Configuration>::namespaced(c.clone(), ns)
        .get_opt(peer.as_str())
        .await
        .map_err(err("the Configuration"))?;
    let gateway_server = Api::<GatewayServer>::namespaced(c.clone(), ns)
        .get_opt(peer.as_str())
        .await
        .map_err(err("the GatewayServer"))?
        .is_some();
    let gateway_client = Api::<GatewayClient>::namespaced(c.clone(), ns)
        .get_opt(peer.as_str())
        .await
        .map_err(err("the GatewayClient"))?
        .is_some();
    let connections = Api::<Connection>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(err("Connections"))?
        .items;
    Ok(PeerView {
        tenant_namespace: Some(ns.to_owned()),
        tenant,
        has_control_plane_identity: identity.is_some(),
        control_plane_kubeconfig: kubeconfig_server,
        remote_tenant_namespace: remote_ns,
        local_slices,
        replica_slices,
        virtual_nodes,
        networking_enabled: ctx.config.networking_enabled,
        configuration,
        gateway_server,
        gateway_client,
        connections,
    })
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    let Some(peer) = labels::remote_cluster_id_from(ns.labels()).ok().flatten() else {
        return Ok(Action::await_change());
    };
    let fcs = Api::<ForeignCluster>::all(ctx.client.clone());
    let existing = fcs
        .get_opt(peer.as_str())
        .await
        .map_err(Error::kube(format!("reading ForeignCluster {peer}")))?;
    let view = if ns.metadata.deletion_timestamp.is_some() {
        PeerView::default()
    } else {
        gather(&ctx, &ns.name_any(), &peer).await?
    };
    let Some(mut status) = summarize(&view) else {
        if existing.is_some() {
            match fcs.delete(peer.as_str(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_404(&e) => {}
                Err(e) => return Err(Error::kube(format!("deleting ForeignCluster {peer}"))(e)),
            }
        }
        return Ok(Action::requeue(ctx.config.resync));
    };
    keep_times(
        existing.as_ref().and_then(|f| f.status.as_ref()),
        &mut status,
    );
    if existing.is_none() {
        let mut fc = forge::foreign_cluster(&peer);
        fc.metadata.annotations = Some(
            [(
                names::LOCAL_VERSION_ANNOTATION.to_owned(),
                ctx.config.version.clone(),
            )]
            .into(),
        );
        fcs.patch(peer.as_str(), &apply_params(), &Patch::Apply(&fc))
            .await
            .map_err(Error::kube(format!("creating ForeignCluster {peer}")))?;
    }
    if existing.as_ref().and_then(|f| f.status.as_ref()) != Some(&status) {
        let patch = serde_json::json!({"status": status});
        fcs.patch_status(
            peer.as_str(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "writing the status of ForeignCluster {peer}"
        )))?;
    }
    ctx.reset_backoff(ns.as_ref());
    Ok(Action::requeue(ctx.config.resync))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_core::api::authentication::v1beta1::{
        AuthParams, ResourceSliceCondition, ResourceSliceConditionStatus as S,
        ResourceSliceConditionType as T, ResourceSliceStatus, TenantStatus,
    };
    use liqo_core::api::networking::v1beta1::ConnectionStatus;

    fn slice(name: &str, status: Option<S>) -> ResourceSlice {
        let mut s = ResourceSlice::new(name, Default::default());
        s.status = status.map(|st| ResourceSliceStatus {
            conditions: vec![ResourceSliceCondition {
                type_: T::Resources,
                status: st,
                last_transition_time: None,
                reason: None,
                message: Some("cpu: requested 1000".into()),
            }],
            ..Default::default()
        });
        s
    }

    #[test]
    fn roles_follow_what_exists() {
        let mut tenant = Tenant::new("rome", Default::default());
        tenant.status = Some(TenantStatus {
            auth_params: Some(AuthParams::default()),
            ..Default::default()
        });
        let consumer = PeerView {
            tenant: Some(tenant.clone()),
            ..PeerView::default()
        };
        let s = summarize(&consumer).unwrap();
        assert_eq!(s.role, RoleType::Consumer);
        assert_eq!(
            module_state(&s.modules.clone().unwrap().authentication),
            "Established"
        );
        assert_eq!(module_state(&s.modules.unwrap().offloading), "Disabled");

        let both = PeerView {
            tenant: Some(tenant),
            has_control_plane_identity: true,
            ..PeerView::default()
        };
        let s = summarize(&both).unwrap();
        assert_eq!(s.role, RoleType::ConsumerAndProvider);
        // The identity has no kubeconfig yet: pending.
        assert_eq!(module_state(&s.modules.unwrap().authentication), "Pending");
    }

    #[test]
    fn offloading_reports_denials_and_missing_virtual_nodes() {
        let pending = PeerView {
            has_control_plane_identity: true,
            control_plane_kubeconfig: Some("https://x".into()),
            local_slices: vec![slice("milan", None)],
            ..PeerView::default()
        };
        let m = summarize(&pending).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.offloading), "Pending");

        let denied = PeerView {
            local_slices: vec![slice("milan", Some(S::Denied))],
            ..pending.clone()
        };
        let m = summarize(&denied).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.offloading), "Error");
        assert!(
            m.offloading.conditions[0]
                .message
                .as_deref()
                .unwrap()
                .contains("requested 1000")
        );

        let ready = PeerView {
            local_slices: vec![slice("milan", Some(S::Accepted))],
            virtual_nodes: vec![VirtualNode::new("milan", Default::default())],
            ..pending
        };
        let m = summarize(&ready).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.offloading), "Established");
    }

    #[test]
    fn networking_needs_the_module_and_a_connection() {
        let mut conn = Connection::new(
            "gw",
            liqo_core::api::networking::v1beta1::ConnectionSpec {
                type_: liqo_core::api::networking::v1beta1::ConnectionType::Client,
                gateway_ref: Default::default(),
            },
        );
        let mut view = PeerView {
            networking_enabled: true,
            configuration: Some(Configuration::new("milan", Default::default())),
            connections: vec![conn.clone()],
            ..PeerView::default()
        };
        let m = summarize(&view).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.networking), "Pending");
        conn.status = Some(ConnectionStatus {
            value: Some(ConnectionStatusValue::Connected),
            latency: None,
        });
        view.connections = vec![conn];
        let mut c = Configuration::new("milan", Default::default());
        c.status = Some(liqo_core::api::networking::v1beta1::ConfigurationStatus {
            remote: Some(Default::default()),
            ..Default::default()
        });
        view.configuration = Some(c);
        let m = summarize(&view).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.networking), "Established");
        view.networking_enabled = false;
        let m = summarize(&view).unwrap().modules.unwrap();
        assert_eq!(module_state(&m.networking), "Disabled");
    }
}
