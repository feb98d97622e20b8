//! The gateway driven by resources: a `GatewayServer` or `GatewayClient`, the peer's
//! `PublicKey` and the peering's `Configuration`, all in the peering's tenant namespace.
//!
//! What the gateway reads and writes (the contract `liqoctl peer` relies on):
//!
//! | resource | read | written by the gateway |
//! |---|---|---|
//! | `GatewayServer`/`GatewayClient <name>` | `spec.mtu`, `spec.endpoint` (client: the server's address and port; server: the port), `spec.secretRef` | `status.secretRef` (the key Secret), server: `status.endpoint` (`addresses`, `port`, `protocol: UDP`) |
//! | Secret (`spec.secretRef`, or `<name>-gw-keys` created by the gateway) | `privateKey` | created with a fresh key pair (`privateKey`, `publicKey`, raw 32 bytes each) when `spec.secretRef` is unset |
//! | `PublicKey` labelled `liqo.io/remote-cluster-id=<peer>` | `spec.publicKey` (raw 32 bytes) | - |
//! | `Configuration` labelled `liqo.io/remote-cluster-id=<peer>` | `spec.remote.cidr` (real), `status.remote.cidr` (remapped), `spec.local.cidr` | - |
//! | `Connection gw-<name>` | - | created; `status.value` `Connected`/`Connecting`, `status.latency` |
//!
//! Everything the gateway creates is owned by the gateway resource, so deleting it lets the
//! garbage collector remove the rest; the data plane is torn down as soon as the resource
//! is gone.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use ipnetwork::IpNetwork;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt as _};
use liqo_core::api::networking::v1beta1::{
    Configuration, Connection, ConnectionLatency, ConnectionSpec, ConnectionStatus,
    ConnectionStatusValue, ConnectionType, EndpointStatus, GatewayClient, GatewayServer, Protocol,
    PublicKey as PublicKeyResource,
};
use liqo_core::ids::ClusterId;
use liqo_core::labels;
use liqo_core::runtime::retrying;
use liqo_ipam::remap::{Mapping, RemoteCidrs};

use super::conncheck::{CheckOptions, ConnCheck, ConnectionState};
use super::{Gateway, GatewayConfig, Mode, PeerConfig};
use crate::tunnel::{PrivateKey, PublicKey};
use crate::{Error, Result, sys};

/// Field manager of the gateway's writes.
pub const FIELD_MANAGER: &str = "liqo-gateway";

/// How a gateway process finds its resources and runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Server or client.
    pub mode: Mode,
    /// Name of the `GatewayServer` or `GatewayClient`.
    pub name: String,
    /// Its namespace (the tenant namespace of the peer).
    pub namespace: String,
    /// The peer's cluster id.
    pub remote_cluster_id: ClusterId,
    /// Tunnel link name.
    pub tunnel_interface: String,
    /// Server: the address written to `status.endpoint` (default: the first IPv4 address of
    /// the default interface).
    pub endpoint_address: Option<IpAddr>,
    /// The interface towards the outside (default: the default route's, or the route to the
    /// server for a client).
    pub default_interface: Option<String>,
    /// Source-NAT all traffic to the peer (upstream's fullMasquerade).
    pub full_masquerade: bool,
    /// The connection check.
    pub check: CheckOptions,
    /// How often the data plane is verified (and repaired) without any change.
    pub resync: Duration,
}

impl Options {
    /// Options with defaults for a gateway of `mode` named `name` in `namespace`.
    #[must_use]
    pub fn new(mode: Mode, name: &str, namespace: &str, remote_cluster_id: ClusterId) -> Self {
        Self {
            mode,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            remote_cluster_id,
            tunnel_interface: crate::tunnel::DEFAULT_INTERFACE_NAME.to_owned(),
            endpoint_address: None,
            default_interface: None,
            full_masquerade: false,
            check: CheckOptions::default(),
            resync: Duration::from_secs(5),
        }
    }

    /// The name of the `Connection` the gateway maintains.
    #[must_use]
    pub fn connection_name(&self) -> String {
        format!("gw-{}", self.name)
    }

    /// The name of the key Secret the gateway creates when `spec.secretRef` is unset.
    #[must_use]
    pub fn keys_secret_name(&self) -> String {
        format!("{}-gw-keys", self.name)
    }
}

/// Runs the gateway until `shutdown` completes, then tears the data plane down.
///
/// Reconciles on every change of the watched resources and every [`Options::resync`];
/// errors are logged and retried, they never stop the loop.
///
/// # Errors
///
/// Only the teardown's error at the end.
pub async fn run(
    client: Client,
    gateway: Arc<Gateway>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let ns = options.namespace.as_str();
    let selector = format!(
        "{}={}",
        labels::core::REMOTE_CLUSTER_ID,
        options.remote_cluster_id
    );
    let name_field = format!("metadata.name={}", options.name);
    let gw_events = match options.mode {
        Mode::Server => retrying(watcher(
            Api::<GatewayServer>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&name_field),
        ))
        .map(|_| ())
        .boxed(),
        Mode::Client => retrying(watcher(
            Api::<GatewayClient>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&name_field),
        ))
        .map(|_| ())
        .boxed(),
    };
    let key_events = retrying(watcher(
        Api::<PublicKeyResource>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    ))
    .map(|_| ())
    .boxed();
    let config_events = retrying(watcher(
        Api::<Configuration>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    ))
    .map(|_| ())
    .boxed();
    let mut events = futures::stream::select_all([gw_events, key_events, config_events]);

    let mut driver = Driver {
        client,
        gateway,
        options,
        check: None,
        written: None,
        applied: false,
    };
    let mut ticker = tokio::time::interval(driver.options.resync);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut state_rx: Option<tokio::sync::watch::Receiver<ConnectionState>> = None;
    loop {
        let state_changed = async {
            match state_rx.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {
                if driver.applied
                    && let Err(e) = driver.gateway.backend().check().await
                {
                    tracing::error!(error = %e, "the tunnel stopped: shutting down");
                    break;
                }
                driver.reconcile_logged().await;
            }
            Some(()) = events.next() => driver.reconcile_logged().await,
            true = state_changed => {}
        }
        if state_rx.is_none() {
            state_rx = driver.check.as_ref().map(ConnCheck::subscribe);
        }
        driver.write_connection_status().await;
    }
    tracing::info!("shutting down: removing the tunnel, routes and NAT tables");
    let result = driver.gateway.teardown().await;
    driver.check = None;
    driver.write_connection_status().await;
    result
}

/// What the loop keeps between reconciles.
struct Driver {
    client: Client,
    gateway: Arc<Gateway>,
    options: Options,
    check: Option<ConnCheck>,
    /// The last Connection status written.
    written: Option<(ConnectionStatusValue, std::time::Instant)>,
    /// Whether the data plane is configured.
    applied: bool,
}

/// The parts of a `GatewayServer` or `GatewayClient` the gateway uses.
struct GatewayResource {
    uid: Option<String>,
    kind: &'static str,
    mtu: Option<i32>,
    secret_ref: Option<String>,
    /// Server: the listen port; client: the server's address and port.
    endpoint: Option<EndpointStatus>,
    port: Option<i32>,
}

impl Driver {
    async fn reconcile_logged(&mut self) {
        if let Err(e) = self.reconcile().await {
            tracing::warn!(error = %e, "gateway reconcile failed; retrying");
        }
    }

    async fn reconcile(&mut self) -> Result<()> {
        let Some(resource) = self.fetch_gateway().await? else {
            if self.applied {
                tracing::info!(
                    name = %self.options.name,
                    "gateway resource gone: removing the data plane"
                );
                self.gateway.teardown().await?;
                self.check = None;
                self.applied = false;
            } else {
                tracing::info!(
                    name = %self.options.name,
                    namespace = %self.options.namespace,
                    "waiting for the gateway resource"
                );
            }
            return Ok(());
        };
        let (private, secret_name) = self.ensure_keys(&resource).await?;
        let default_interface = self.default_interface(&resource).await?;
        self.write_gateway_status(&resource, &secret_name, &default_interface)
            .await?;
        let config = self
            .build_config(&resource, private, default_interface)
            .await?;
        self.gateway.apply(&config).await?;
        if !self.applied {
            tracing::info!(
                backend = self.gateway.backend().name(),
                tunnel = %config.tunnel_interface,
                peer = config.peer.is_some(),
                remote = ?config.remote.mappings().collect::<Vec<_>>(),
                "data plane configured"
            );
        }
        self.applied = true;
        if self.check.is_none() {
            self.check = Some(ConnCheck::start(
                self.options.mode.tunnel_address().ip(),
                self.options.mode.peer_tunnel_ip(),
                self.options.check,
            ));
        }
        self.ensure_connection(&resource).await
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.options.namespace)
    }

    async fn fetch_gateway(&self) -> Result<Option<GatewayResource>> {
        let name = &self.options.name;
        let context = || format!("reading the gateway resource {name}");
        Ok(match self.options.mode {
            Mode::Server => self
                .api::<GatewayServer>()
                .get_opt(name)
                .await
                .map_err(|source| Error::Kube {
                    context: context(),
                    source,
                })?
                .map(|gw| GatewayResource {
                    uid: gw.uid(),
                    kind: "GatewayServer",
                    mtu: gw.spec.mtu,
                    secret_ref: gw.spec.secret_ref.map(|r| r.name),
                    endpoint: None,
                    port: gw.spec.endpoint.and_then(|e| e.port),
                }),
            Mode::Client => self
                .api::<GatewayClient>()
                .get_opt(name)
                .await
                .map_err(|source| Error::Kube {
                    context: context(),
                    source,
                })?
                .map(|gw| GatewayResource {
                    uid: gw.uid(),
                    kind: "GatewayClient",
                    mtu: gw.spec.mtu,
                    secret_ref: gw.spec.secret_ref.map(|r| r.name),
                    port: gw.spec.endpoint.as_ref().and_then(|e| e.port),
                    endpoint: gw.spec.endpoint,
                }),
        })
    }

    fn owner(&self, resource: &GatewayResource) -> Option<OwnerReference> {
        Some(OwnerReference {
            api_version: "networking.liqo.io/v1beta1".to_owned(),
            kind: resource.kind.to_owned(),
            name: self.options.name.clone(),
            uid: resource.uid.clone()?,
            ..OwnerReference::default()
        })
    }

    /// The private key from `spec.secretRef`, or from the Secret the gateway creates.
    async fn ensure_keys(&self, resource: &GatewayResource) -> Result<(PrivateKey, String)> {
        let secrets = self.api::<Secret>();
        let name = resource
            .secret_ref
            .clone()
            .unwrap_or_else(|| self.options.keys_secret_name());
        let kube_err = |context: String| move |source| Error::Kube { context, source };
        let existing = secrets
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("reading key Secret {name}")))?;
        if let Some(secret) = existing {
            let key = secret
                .data
                .as_ref()
                .and_then(|d| d.get("privateKey"))
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "Secret {name} has no privateKey field (32 raw bytes expected)"
                    ))
                })?;
            let bytes: [u8; 32] = key.0.as_slice().try_into().map_err(|_| {
                Error::InvalidConfig(format!(
                    "Secret {name}: privateKey is {} bytes, expected 32",
                    key.0.len()
                ))
            })?;
            return Ok((PrivateKey::from_bytes(bytes), name));
        }
        if resource.secret_ref.is_some() {
            return Err(Error::InvalidConfig(format!(
                "spec.secretRef names Secret {name}, which does not exist"
            )));
        }
        let keys = self.gateway.backend().generate_keys().await?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.options.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (
                        labels::networking::GATEWAY_RESOURCE.to_owned(),
                        labels::TRUE.to_owned(),
                    ),
                    (
                        labels::core::REMOTE_CLUSTER_ID.to_owned(),
                        self.options.remote_cluster_id.to_string(),
                    ),
                ])),
                owner_references: self.owner(resource).map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (
                    "privateKey".to_owned(),
                    ByteString(keys.private.as_bytes().to_vec()),
                ),
                (
                    "publicKey".to_owned(),
                    ByteString(keys.public.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(secret = %name, public_key = %keys.public, "created the key pair");
                Ok((keys.private, name))
            }
            // Lost a race with another writer: use theirs next time round.
            Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::InvalidConfig(format!(
                "Secret {name} appeared concurrently; retrying"
            ))),
            Err(source) => Err(Error::Kube {
                context: format!("creating key Secret {name}"),
                source,
            }),
        }
    }

    async fn default_interface(&self, resource: &GatewayResource) -> Result<String> {
        if let Some(iface) = &self.options.default_interface {
            return Ok(iface.clone());
        }
        if let Some(iface) = sys::default_route_interface().await {
            return Ok(iface);
        }
        if let Some(ep) = resource
            .endpoint
            .as_ref()
            .and_then(|e| e.addresses.first())
            .and_then(|a| a.parse::<IpAddr>().ok())
            && let Some(iface) = sys::route_interface(ep).await
        {
            return Ok(iface);
        }
        Err(Error::InvalidConfig(
            "cannot detect the default interface (no default route): pass --default-interface"
                .to_owned(),
        ))
    }

    async fn write_gateway_status(
        &self,
        resource: &GatewayResource,
        secret_name: &str,
        default_interface: &str,
    ) -> Result<()> {
        let secret_ref = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(secret_name.to_owned()),
            namespace: Some(self.options.namespace.clone()),
            ..ObjectReference::default()
        };
        let mut status = serde_json::json!({ "secretRef": secret_ref });
        if self.options.mode == Mode::Server {
            let address = match self.options.endpoint_address {
                Some(a) => Some(a),
                None => sys::interface_ipv4(default_interface).await,
            };
            let Some(address) = address else {
                return Err(Error::InvalidConfig(format!(
                    "interface {default_interface} has no IPv4 address to advertise: pass --endpoint-address"
                )));
            };
            let endpoint = EndpointStatus {
                addresses: vec![address.to_string()],
                port: Some(
                    resource
                        .port
                        .unwrap_or(i32::from(crate::tunnel::DEFAULT_LISTEN_PORT)),
                ),
                protocol: Some(Protocol::Udp),
                ..EndpointStatus::default()
            };
            status["endpoint"] = serde_json::to_value(endpoint)
                .map_err(|e| Error::InvalidConfig(format!("cannot serialize the endpoint: {e}")))?;
        }
        let patch = serde_json::json!({ "status": status });
        let params = PatchParams::default();
        let name = &self.options.name;
        let result = match self.options.mode {
            Mode::Server => self
                .api::<GatewayServer>()
                .patch_status(name, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
            Mode::Client => self
                .api::<GatewayClient>()
                .patch_status(name, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
        };
        result.map_err(|source| Error::Kube {
            context: format!("writing the status of {} {name}", resource.kind),
            source,
        })
    }

    async fn build_config(
        &self,
        resource: &GatewayResource,
        private: PrivateKey,
        default_interface: String,
    ) -> Result<GatewayConfig> {
        let mut config = GatewayConfig::new(self.options.mode, private, &default_interface);
        config.tunnel_interface = self.options.tunnel_interface.clone();
        config.full_masquerade = self.options.full_masquerade;
        config.table = format!("liqo-gw-{}", self.options.remote_cluster_id);
        if let Some(mtu) = resource.mtu {
            config.mtu = u32::try_from(mtu)
                .map_err(|_| Error::InvalidConfig(format!("spec.mtu {mtu} is negative")))?;
        }
        if let Some(port) = resource.port {
            config.listen_port = u16::try_from(port).map_err(|_| {
                Error::InvalidConfig(format!("spec.endpoint.port {port} is not a UDP port"))
            })?;
        }
        let selector = format!(
            "{}={}",
            labels::core::REMOTE_CLUSTER_ID,
            self.options.remote_cluster_id
        );
        let keys = self
            .api::<PublicKeyResource>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::Kube {
                context: "listing PublicKeys".to_owned(),
                source,
            })?;
        if let Some(key) = keys.items.iter().find_map(|k| k.spec.public_key.as_ref()) {
            let bytes: [u8; 32] = key.0.as_slice().try_into().map_err(|_| {
                Error::InvalidConfig(format!(
                    "PublicKey for {}: spec.publicKey is {} bytes, expected 32",
                    self.options.remote_cluster_id,
                    key.0.len()
                ))
            })?;
            config.peer = Some(PeerConfig {
                public_key: PublicKey::from_bytes(bytes),
                endpoint: match self.options.mode {
                    Mode::Server => None,
                    Mode::Client => Some(resolve_endpoint(resource).await?),
                },
            });
        }
        let configurations = self
            .api::<Configuration>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::Kube {
                context: "listing Configurations".to_owned(),
                source,
            })?;
        if let Some(cfg) = configurations.items.first() {
            apply_configuration(&mut config, cfg)?;
        }
        Ok(config)
    }

    async fn ensure_connection(&self, resource: &GatewayResource) -> Result<()> {
        let api = self.api::<Connection>();
        let name = self.options.connection_name();
        let exists = api
            .get_opt(&name)
            .await
            .map_err(|source| Error::Kube {
                context: format!("reading Connection {name}"),
                source,
            })?
            .is_some();
        if exists {
            return Ok(());
        }
        let mut connection = Connection::new(
            &name,
            ConnectionSpec {
                type_: match self.options.mode {
                    Mode::Server => ConnectionType::Server,
                    Mode::Client => ConnectionType::Client,
                },
                gateway_ref: ObjectReference {
                    api_version: Some("networking.liqo.io/v1beta1".to_owned()),
                    kind: Some(resource.kind.to_owned()),
                    name: Some(self.options.name.clone()),
                    namespace: Some(self.options.namespace.clone()),
                    uid: resource.uid.clone(),
                    ..ObjectReference::default()
                },
            },
        );
        connection.metadata.labels = Some(BTreeMap::from([(
            labels::core::REMOTE_CLUSTER_ID.to_owned(),
            self.options.remote_cluster_id.to_string(),
        )]));
        connection.metadata.owner_references = self.owner(resource).map(|o| vec![o]);
        match api.create(&PostParams::default(), &connection).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(source) => Err(Error::Kube {
                context: format!("creating Connection {name}"),
                source,
            }),
        }
    }

    /// Writes the Connection status when connectedness changed, or the latency every 10 s.
    async fn write_connection_status(&mut self) {
        if !self.applied && self.check.is_some() {
            return;
        }
        let state = self
            .check
            .as_ref()
            .map(ConnCheck::state)
            .unwrap_or_default();
        let value = if state.connected {
            ConnectionStatusValue::Connected
        } else {
            ConnectionStatusValue::Connecting
        };
        let latency = state
            .latency
            .filter(|_| state.connected)
            .map(|l| format!("{:.3}ms", l.as_secs_f64() * 1000.0));
        if let Some((old_value, at)) = &self.written
            && *old_value == value
            && at.elapsed() < Duration::from_secs(10)
        {
            return;
        }
        let status = ConnectionStatus {
            value: Some(value),
            latency: latency.clone().map(|value| ConnectionLatency {
                value: Some(value),
                timestamp: Some(Time(k8s_openapi::jiff::Timestamp::now())),
            }),
        };
        let patch = serde_json::json!({ "status": status });
        let name = self.options.connection_name();
        match self
            .api::<Connection>()
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if self.written.as_ref().map(|w| w.0) != Some(value) {
                    tracing::info!(connection = %name, ?value, latency = ?latency, "connection status");
                }
                self.written = Some((value, std::time::Instant::now()));
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(connection = %name, error = %e, "cannot write connection status")
            }
        }
    }
}

/// The server endpoint from a `GatewayClient` spec, resolving a host name.
async fn resolve_endpoint(resource: &GatewayResource) -> Result<SocketAddr> {
    let endpoint = resource.endpoint.as_ref().ok_or_else(|| {
        Error::InvalidConfig("GatewayClient has no spec.endpoint (the server's address)".into())
    })?;
    let address = endpoint.addresses.first().ok_or_else(|| {
        Error::InvalidConfig("GatewayClient spec.endpoint.addresses is empty".to_owned())
    })?;
    let port = endpoint
        .port
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(crate::tunnel::DEFAULT_LISTEN_PORT);
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((address.as_str(), port))
        .await
        .map_err(|e| Error::InvalidConfig(format!("cannot resolve server address {address}: {e}")))?
        .next()
        .ok_or_else(|| {
            Error::InvalidConfig(format!("server address {address} resolves to nothing"))
        })
}

/// Fills the CIDRs of `config` from a `Configuration`: real remote CIDRs from the spec,
/// remapped ones from the status (pairwise), local ones from `spec.local`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a CIDR that does not parse or a remapped CIDR whose size
/// differs from the real one.
pub fn apply_configuration(config: &mut GatewayConfig, cfg: &Configuration) -> Result<()> {
    let real = cfg
        .spec
        .remote
        .as_ref()
        .and_then(|r| r.cidr.clone())
        .unwrap_or_default();
    let remapped = cfg
        .status
        .as_ref()
        .and_then(|s| s.remote.as_ref())
        .and_then(|r| r.cidr.clone());
    // Until the IPAM has remapped the peer's CIDRs, nothing is routed.
    let Some(remapped) = remapped else {
        return Ok(());
    };
    config.remote = RemoteCidrs {
        pod: pair(&real.pod, &remapped.pod, "pod")?,
        external: pair(&real.external, &remapped.external, "external")?,
    };
    let local = cfg
        .spec
        .local
        .as_ref()
        .and_then(|l| l.cidr.clone())
        .unwrap_or_default();
    config.local_pod_cidrs = local
        .pod
        .iter()
        .map(|c| parse(c.as_str(), "spec.local.cidr.pod"))
        .collect::<Result<_>>()?;
    config.local_external_cidr = local
        .external
        .first()
        .map(|c| parse(c.as_str(), "spec.local.cidr.external"))
        .transpose()?;
    Ok(())
}

fn parse(cidr: &str, field: &str) -> Result<IpNetwork> {
    cidr.parse()
        .map_err(|e| Error::InvalidConfig(format!("Configuration {field}: {cidr:?}: {e}")))
}

fn pair(
    real: &[liqo_core::api::networking::v1beta1::Cidr],
    remapped: &[liqo_core::api::networking::v1beta1::Cidr],
    what: &str,
) -> Result<Vec<Mapping>> {
    real.iter()
        .zip(remapped)
        .map(|(r, m)| {
            let r = parse(r.as_str(), &format!("spec.remote.cidr.{what}"))?;
            let m = parse(m.as_str(), &format!("status.remote.cidr.{what}"))?;
            Mapping::new(r, m).map_err(|e| {
                Error::InvalidConfig(format!("cannot map {what} CIDR {r} to {m}: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use liqo_core::api::networking::v1beta1::{
        Cidr, ClusterConfig, ClusterConfigCidr, ConfigurationSpec, ConfigurationStatus,
    };

    use super::*;

    fn cidrs(pod: &str, external: &str) -> Option<ClusterConfig> {
        Some(ClusterConfig {
            cidr: Some(ClusterConfigCidr {
                pod: vec![Cidr(pod.into())],
                external: vec![Cidr(external.into())],
            }),
        })
    }

    #[test]
    fn configuration_becomes_mappings_once_remapped() {
        let mut cfg = Configuration::new(
            "milan",
            ConfigurationSpec {
                local: cidrs("10.0.0.0/16", "10.70.0.0/16"),
                remote: cidrs("10.0.0.0/16", "10.70.0.0/16"),
            },
        );
        let mut config = GatewayConfig::new(Mode::Client, PrivateKey::from_bytes([1; 32]), "eth0");
        apply_configuration(&mut config, &cfg).unwrap();
        assert!(
            config.remote.pod.is_empty(),
            "nothing before the IPAM remapped"
        );
        cfg.status = Some(ConfigurationStatus {
            remote: cidrs("10.71.0.0/16", "10.91.0.0/16"),
            ..ConfigurationStatus::default()
        });
        apply_configuration(&mut config, &cfg).unwrap();
        assert_eq!(config.remote.pod[0].remapped().to_string(), "10.71.0.0/16");
        assert_eq!(config.remote.external[0].real().to_string(), "10.70.0.0/16");
        assert_eq!(config.unknown_source_ip().unwrap().to_string(), "10.70.0.0");
        assert_eq!(config.local_pod_cidrs[0].to_string(), "10.0.0.0/16");
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let mut cfg = Configuration::new(
            "milan",
            ConfigurationSpec {
                local: None,
                remote: cidrs("10.0.0.0/16", "10.70.0.0/16"),
            },
        );
        cfg.status = Some(ConfigurationStatus {
            remote: cidrs("10.71.0.0/24", "10.91.0.0/16"),
            ..ConfigurationStatus::default()
        });
        let mut config = GatewayConfig::new(Mode::Client, PrivateKey::from_bytes([1; 32]), "eth0");
        assert!(matches!(
            apply_configuration(&mut config, &cfg),
            Err(Error::InvalidConfig(_))
        ));
    }
}
