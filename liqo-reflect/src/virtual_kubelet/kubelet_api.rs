//! The kubelet API of the virtual kubelet (HTTPS on the Node's InternalIP and kubelet port):
//! what the home API server calls for `kubectl logs`, `kubectl exec` and `kubectl attach` on
//! pods of the virtual node. The twin pod is found through the NamespaceMaps (same name, the
//! remote namespace of an Accepted mapping) and the request goes on to the provider's API
//! server.
//!
//! - **logs** (`/containerLogs/{ns}/{pod}/{container}`): `pods/log` of the twin is streamed
//!   back, with `follow`, `tailLines`, `timestamps`, `sinceSeconds`, `limitBytes` and
//!   `previous` passed on.
//! - **exec** (`/exec/{ns}/{pod}/{container}?command=..&input=1&output=1&error=1&tty=1`) and
//!   **attach** (`/attach/...`, same options without `command`): WebSockets only, subprotocol
//!   `v5.channel.k8s.io` (preferred) or `v4.channel.k8s.io`. kube-apiserver 1.36 proxies a
//!   client's WebSocket to the kubelet as it is only when the Node declares
//!   [`WEBSOCKETS_TO_KUBELET_FEATURE`] in `status.declaredFeatures` (feature gates
//!   `ExtendWebSocketsToKubelet` and `NodeDeclaredFeatures`, both on by default in 1.36; the
//!   virtual Node declares it); otherwise it translates to SPDY, which this API refuses with
//!   a message saying so. The session on the provider is opened with kube-rs (`pods/exec` or
//!   `pods/attach` of the twin, over WebSockets too) and the channels are bridged both ways:
//!   stdin (0), stdout (1), stderr (2), the final Status with the exit code (3), terminal
//!   resize (4) and, in v5, the client's end of stdin (255).
//!
//! **Authentication and authorization**, as the kubelet does them (`--anonymous-auth=false`,
//! `--authorization-mode=Webhook`): every client must present a certificate issued by the
//! home cluster's client CA (the API server uses its kubelet client certificate), and each
//! request is authorized with a `SubjectAccessReview` for its user and groups on the virtual
//! Node: `nodes/proxy` for exec, attach, logs of containers, port-forward and run,
//! `nodes/log`, `nodes/stats` and `nodes/metrics` for those paths; the HTTP method gives the
//! verb (GET `get`, POST `create`, ...). Decisions are cached (allowed 5 minutes, denied 30 s,
//! as the kubelet). Refusals are a `metav1.Status` 403 naming what was missing.
//!
//! Errors before the session starts (the namespace is not offloaded, the twin does not
//! exist, the provider refuses) are answered with a `metav1.Status` body that kubectl prints
//! as `Error from server (...)`; they never leave the client waiting.
//!
//! - **port-forward** (`/portForward/{ns}/{pod}`): the protocol upgrade (SPDY/3.1, or
//!   WebSockets) is passed on to `pods/portforward` of the twin on the provider's API server;
//!   once both answered `101 Switching Protocols`, bytes are copied both ways, so the streams
//!   run between the client and the provider.
//!
//! - **stats** (`/stats/summary`) and **resource metrics** (`/metrics/resource`): the usage
//!   of the twins from the provider's `metrics.k8s.io` ([`stats`](super::stats)), so
//!   metrics-server and `kubectl top` work where the provider has a metrics pipeline; 503
//!   saying so where it has none.
//!
//! `run` and the other stats and metrics paths are answered 501 (not implemented).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use liqo_core::api::offloading::v1beta1::NamespaceMap;
use liqo_core::webhook::{
    Body, ClientIdentity, ServingCertificate, full_body, serve_tls_authenticated,
};

use super::accepted_pairs;
use super::exec::{self, StreamKind};
use crate::{Error, Result};

/// The Node feature (`status.declaredFeatures`) that makes kube-apiserver proxy WebSocket
/// exec/attach/port-forward requests to the kubelet as they are instead of translating them
/// to SPDY. The virtual Node declares it: its kubelet API speaks WebSockets.
pub const WEBSOCKETS_TO_KUBELET_FEATURE: &str = "ExtendWebSocketsToKubelet";

/// What the kubelet API needs.
#[derive(Clone)]
pub struct KubeletApi {
    home: Client,
    remote: Client,
    tenant_namespace: String,
    node_name: String,
    decisions: Arc<Mutex<HashMap<Attributes, (bool, Instant)>>>,
    counters: Arc<Mutex<super::stats::CpuCounters>>,
}

/// What a request asks of the Node, for its authorization.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Attributes {
    user: String,
    groups: Vec<String>,
    verb: &'static str,
    subresource: &'static str,
}

/// The verb and `nodes` subresource of a kubelet API request, as the kubelet maps them.
fn attributes(method: &hyper::Method, path: &str) -> (&'static str, &'static str) {
    let verb = match *method {
        hyper::Method::POST => "create",
        hyper::Method::PUT => "update",
        hyper::Method::PATCH => "patch",
        hyper::Method::DELETE => "delete",
        _ => "get",
    };
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let subresource = match first {
        "logs" => "log",
        "stats" => "stats",
        "metrics" => "metrics",
        "spec" => "spec",
        _ => "proxy",
    };
    (verb, subresource)
}

const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);

impl std::fmt::Debug for KubeletApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletApi")
            .field("tenant_namespace", &self.tenant_namespace)
            .finish_non_exhaustive()
    }
}

/// The headers of an upgrade request passed on to the provider (the protocol negotiation;
/// never credentials: the provider sees the virtual kubelet's own).
const UPGRADE_REQUEST_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
];

/// The headers of the provider's `101 Switching Protocols` passed back.
const UPGRADE_RESPONSE_HEADERS: [&str; 5] = [
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
];

/// The two renderings of the pods' resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatsFormat {
    /// `/stats/summary`.
    Summary,
    /// `/metrics/resource`.
    Resource,
}

/// A parsed kubelet API path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Logs {
        namespace: String,
        pod: String,
        container: String,
    },
    Stream {
        kind: StreamKind,
        namespace: String,
        pod: String,
        container: String,
    },
    PortForward {
        namespace: String,
        pod: String,
    },
    Stats(StatsFormat),
    Healthz,
    Unsupported(&'static str),
    NotFound,
}

fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["containerLogs", ns, pod, container] => Route::Logs {
            namespace: (*ns).to_owned(),
            pod: (*pod).to_owned(),
            container: (*container).to_owned(),
        },
        ["healthz"] => Route::Healthz,
        [verb @ ("exec" | "attach"), ns, pod, container]
        | [verb @ ("exec" | "attach"), ns, pod, _, container] => Route::Stream {
            kind: if *verb == "exec" {
                StreamKind::Exec
            } else {
                StreamKind::Attach
            },
            namespace: (*ns).to_owned(),
            pod: (*pod).to_owned(),
            container: (*container).to_owned(),
        },
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => Route::PortForward {
            namespace: (*ns).to_owned(),
            pod: (*pod).to_owned(),
        },
        ["run", ..] => Route::Unsupported("run"),
        ["stats", "summary"] => Route::Stats(StatsFormat::Summary),
        ["metrics", "resource"] => Route::Stats(StatsFormat::Resource),
        ["stats", ..] | ["metrics", ..] => {
            Route::Unsupported("stats and metrics other than /stats/summary and /metrics/resource")
        }
        _ => Route::NotFound,
    }
}

/// The log options of a kubelet `containerLogs` query string.
fn log_params(container: &str, query: Option<&str>) -> LogParams {
    let mut params = LogParams {
        container: Some(container.to_owned()),
        ..LogParams::default()
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let truthy = value.is_empty() || value == "true" || value == "1";
        match key {
            "follow" => params.follow = truthy,
            "previous" => params.previous = truthy,
            "timestamps" => params.timestamps = truthy,
            "tailLines" => params.tail_lines = value.parse().ok(),
            "sinceSeconds" => params.since_seconds = value.parse().ok(),
            "limitBytes" => params.limit_bytes = value.parse().ok(),
            _ => {}
        }
    }
    params
}

/// Why a pod of the virtual node has no twin to serve `verb`.
fn not_offloaded(namespace: &str, pod: &str, verb: &str) -> String {
    format!(
        "pod {namespace}/{pod} is not offloaded: namespace {namespace} is not offloaded to this \
         virtual node's cluster, so there is no remote pod to {verb}"
    )
}

/// An error answer with a `metav1.Status` body (what kubectl decodes and prints).
fn status(code: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(full_body(exec::error_status_body(code, message)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(full_body(message));
    *response.status_mut() = status;
    response
}

impl KubeletApi {
    /// The API of the virtual kubelet whose provider is reached with `remote`; NamespaceMaps
    /// are read from `tenant_namespace` of the home cluster.
    #[must_use]
    pub fn new(
        home: Client,
        remote: Client,
        tenant_namespace: impl Into<String>,
        node_name: impl Into<String>,
    ) -> Self {
        Self {
            home,
            remote,
            tenant_namespace: tenant_namespace.into(),
            node_name: node_name.into(),
            decisions: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// The home cluster's client.
    #[must_use]
    pub fn home(&self) -> Client {
        self.home.clone()
    }

    /// Whether the client may do what `req` asks: `Err` with the 403 to answer.
    async fn authorize(&self, req: &Request<Incoming>) -> std::result::Result<(), Response<Body>> {
        let Some(identity) = req.extensions().get::<ClientIdentity>() else {
            return Err(status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: a client certificate issued by the cluster's client CA is required",
            ));
        };
        let (verb, subresource) = attributes(req.method(), req.uri().path());
        let key = Attributes {
            user: identity.user.clone(),
            groups: identity.groups.clone(),
            verb,
            subresource,
        };
        let forbidden = || {
            status(
                StatusCode::FORBIDDEN,
                &format!(
                    "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                    identity.user
                ),
            )
        };
        let cached = {
            let decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
            decisions.get(&key).and_then(|(allowed, at)| {
                let ttl = if *allowed { ALLOWED_TTL } else { DENIED_TTL };
                (at.elapsed() < ttl).then_some(*allowed)
            })
        };
        let allowed = match cached {
            Some(a) => a,
            None => {
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(identity.user.clone()),
                        groups: Some(identity.groups.clone()),
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(verb.to_owned()),
                            resource: Some("nodes".to_owned()),
                            subresource: Some(subresource.to_owned()),
                            name: Some(self.node_name.clone()),
                            ..ResourceAttributes::default()
                        }),
                        ..SubjectAccessReviewSpec::default()
                    },
                    ..SubjectAccessReview::default()
                };
                let answer = match Api::<SubjectAccessReview>::all(self.home.clone())
                    .create(&kube::api::PostParams::default(), &review)
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        return Err(status(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("cannot authorize the request (SubjectAccessReview: {e})"),
                        ));
                    }
                };
                let allowed = answer.status.is_some_and(|s| s.allowed);
                let mut decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
                if decisions.len() > 4096 {
                    decisions.clear();
                }
                decisions.insert(key, (allowed, Instant::now()));
                allowed
            }
        };
        if allowed { Ok(()) } else { Err(forbidden()) }
    }

    /// The remote namespace of local namespace `local`, if it is offloaded and accepted.
    async fn remote_namespace(&self, local: &str) -> Result<Option<String>> {
        let maps = Api::<NamespaceMap>::namespaced(self.home.clone(), &self.tenant_namespace)
            .list(&kube::api::ListParams::default())
            .await
            .map_err(Error::kube("listing NamespaceMaps"))?;
        Ok(accepted_pairs(&maps.items)
            .into_iter()
            .find(|p| p.local() == local)
            .map(|p| p.remote().to_owned()))
    }

    async fn handle(self, req: Request<Incoming>) -> Response<Body> {
        if let Err(refusal) = self.authorize(&req).await {
            return refusal;
        }
        match route(req.uri().path()) {
            Route::Healthz => text(StatusCode::OK, "ok".to_owned()),
            Route::NotFound => text(
                StatusCode::NOT_FOUND,
                format!("{} is not a kubelet API path", req.uri().path()),
            ),
            Route::Unsupported(what) => text(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "{what} on offloaded pods is not implemented by the liqo-rs virtual kubelet yet"
                ),
            ),
            Route::Logs {
                namespace,
                pod,
                container,
            } => {
                let params = log_params(&container, req.uri().query());
                self.logs(&namespace, &pod, params).await
            }
            Route::Stream {
                kind,
                namespace,
                pod,
                container,
            } => self.stream(kind, &namespace, &pod, &container, req).await,
            Route::PortForward { namespace, pod } => self.port_forward(&namespace, &pod, req).await,
            Route::Stats(format) => self.stats(format).await,
        }
    }

    /// port-forward: the upgrade (SPDY, or WebSockets) is passed on to `pods/portforward` of
    /// the twin on the provider's API server, and once both sides switched protocols the
    /// bytes are copied both ways: the streams (and their port headers) are between the
    /// client and the provider, whose kubelet reaches the twin's ports.
    async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        mut req: Request<Incoming>,
    ) -> Response<Body> {
        let remote_namespace = match self.remote_namespace(namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => {
                return status(
                    StatusCode::NOT_FOUND,
                    &not_offloaded(namespace, pod, "port-forward to"),
                );
            }
            Err(e) => return status(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut upstream = hyper::http::Request::builder()
            .method(req.method().clone())
            .uri(format!(
                "/api/v1/namespaces/{remote_namespace}/pods/{pod}/portforward{query}"
            ));
        for (name, value) in req.headers() {
            if UPGRADE_REQUEST_HEADERS.contains(&name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let upstream = match upstream.body(kube::client::Body::from(Vec::new())) {
            Ok(r) => r,
            Err(e) => return status(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let what =
            format!("port-forward to {namespace}/{pod} ({remote_namespace}/{pod} on the provider)");
        let response = match self.remote.send(upstream).await {
            Ok(r) => r,
            Err(e) => {
                return status(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "could not {what}: {}",
                        liqo_core::error::KubeErrorExt::describe(&e)
                    ),
                );
            }
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let code = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            let message = body
                .ok()
                .and_then(|b| {
                    serde_json::from_slice::<
                            k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
                        >(&b)
                        .ok()
                })
                .and_then(|s| s.message)
                .unwrap_or_else(|| code.to_string());
            let code = Some(code)
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_GATEWAY);
            return status(code, &format!("the provider refused to {what}: {message}"));
        }
        let mut answer = Response::new(full_body(Bytes::new()));
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for (name, value) in response.headers() {
            if UPGRADE_RESPONSE_HEADERS.contains(&name.as_str()) {
                answer.headers_mut().append(name, value.clone());
            }
        }
        let downstream = hyper::upgrade::on(&mut req);
        let upstream = hyper::upgrade::on(response);
        tokio::spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let mut down = hyper_util::rt::TokioIo::new(down);
                    let mut up = hyper_util::rt::TokioIo::new(up);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                        tracing::debug!(%what, error = %e, "port-forward ended");
                    }
                }
                Err(e) => tracing::debug!(%what, error = %e, "the upgrade failed"),
            }
        });
        answer
    }

    /// The twins' metrics (`metrics.k8s.io` PodMetrics on the provider) of the pods of this
    /// virtual node, in `format`.
    async fn stats(&self, format: StatsFormat) -> Response<Body> {
        let samples = match self.samples().await {
            Ok(samples) => samples,
            Err(e) => return status(StatusCode::SERVICE_UNAVAILABLE, &e),
        };
        let mut counters = match self.counters.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let (body, content_type) = match format {
            StatsFormat::Summary => (
                super::stats::summary(&self.node_name, &samples, &mut counters).to_string(),
                "application/json",
            ),
            StatsFormat::Resource => (
                super::stats::resource_metrics(&samples, &mut counters),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
        };
        let mut response = Response::new(full_body(body));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response
    }

    /// Each pod of this virtual node whose twin has metrics on the provider.
    async fn samples(&self) -> std::result::Result<Vec<super::stats::PodSample>, String> {
        use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
        use liqo_core::error::KubeErrorExt as _;
        let pods = Api::<Pod>::all(self.home.clone())
            .list(
                &kube::api::ListParams::default()
                    .fields(&format!("spec.nodeName={}", self.node_name)),
            )
            .await
            .map_err(|e| {
                format!(
                    "listing the pods of node {}: {}",
                    self.node_name,
                    e.describe()
                )
            })?;
        let maps = Api::<NamespaceMap>::namespaced(self.home.clone(), &self.tenant_namespace)
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| format!("listing NamespaceMaps: {}", e.describe()))?;
        let remote_of: HashMap<String, String> = accepted_pairs(&maps.items)
            .into_iter()
            .map(|p| (p.local().to_owned(), p.remote().to_owned()))
            .collect();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
            "pods",
        );
        let mut by_namespace: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for pod in &pods.items {
            if let Some(ns) = pod.metadata.namespace.as_deref() {
                by_namespace.entry(ns).or_default().push(pod);
            }
        }
        let mut samples = Vec::new();
        for (namespace, local_pods) in by_namespace {
            let Some(remote) = remote_of.get(namespace) else {
                continue;
            };
            let metrics =
                Api::<DynamicObject>::namespaced_with(self.remote.clone(), remote, &resource)
                    .list(&kube::api::ListParams::default())
                    .await
                    .map_err(|e| match &e {
                        kube::Error::Api(s) if s.code == 404 => {
                            "the provider serves no metrics.k8s.io (no metrics pipeline such as \
                             metrics-server): there is no usage to report for the pods of this \
                             virtual node"
                                .to_owned()
                        }
                        _ => format!(
                            "reading the pods' metrics in {remote} on the provider: {}",
                            e.describe()
                        ),
                    })?;
            let by_name: HashMap<String, DynamicObject> = metrics
                .items
                .into_iter()
                .filter_map(|m| Some((m.metadata.name.clone()?, m)))
                .collect();
            for pod in local_pods {
                let Some(name) = pod.metadata.name.clone() else {
                    continue;
                };
                let Some(metrics) = by_name
                    .get(&name)
                    .and_then(|m| serde_json::from_value(m.data.clone()).ok())
                else {
                    continue;
                };
                samples.push(super::stats::PodSample {
                    namespace: namespace.to_owned(),
                    name,
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    metrics,
                });
            }
        }
        Ok(samples)
    }

    /// exec/attach: checks, opens the provider's session, answers 101 and bridges.
    async fn stream(
        &self,
        kind: StreamKind,
        namespace: &str,
        pod: &str,
        container: &str,
        mut req: Request<Incoming>,
    ) -> Response<Body> {
        let verb = kind.verb();
        let options = match exec::stream_options(kind, req.uri().query()) {
            Ok(o) => o,
            Err(message) => return status(StatusCode::BAD_REQUEST, &message),
        };
        let remote_namespace = match self.remote_namespace(namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => {
                return status(StatusCode::NOT_FOUND, &not_offloaded(namespace, pod, verb));
            }
            Err(e) => return status(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        let offered = req
            .headers()
            .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let protocol = exec::negotiate(offered);
        let key = req.headers().get(hyper::header::SEC_WEBSOCKET_KEY).cloned();
        let (Some(protocol), Some(key), true) =
            (protocol, key, exec::is_websocket_upgrade(req.headers()))
        else {
            return status(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the liqo-rs virtual kubelet serves {verb} only over WebSockets with \
                     subprotocol {}; SPDY is not supported (the API server uses WebSockets \
                     towards kubelets that declare {WEBSOCKETS_TO_KUBELET_FEATURE})",
                    exec::SUPPORTED_PROTOCOLS
                ),
            );
        };

        let api: Api<Pod> = Api::namespaced(self.remote.clone(), &remote_namespace);
        let params = options.attach_params(container);
        tracing::debug!(%namespace, %pod, %remote_namespace, verb, "opening the session on the provider");
        let process = match kind {
            StreamKind::Exec => api.exec(pod, options.command.clone(), &params).await,
            StreamKind::Attach => api.attach(pod, &params).await,
        };
        let process = match process {
            Ok(p) => p,
            Err(kube::Error::Api(s)) => {
                let code = StatusCode::from_u16(s.code)
                    .ok()
                    .filter(|c| c.is_client_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                return status(
                    code,
                    &format!(
                        "the provider refused to {verb} in {remote_namespace}/{pod} (the twin \
                         of {namespace}/{pod}): {}",
                        s.message
                    ),
                );
            }
            Err(e) => {
                return status(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "could not {verb} in {remote_namespace}/{pod} on the provider (the \
                         twin of {namespace}/{pod}): {e}"
                    ),
                );
            }
        };

        let on_upgrade = hyper::upgrade::on(&mut req);
        let what =
            format!("{verb} in {namespace}/{pod} ({remote_namespace}/{pod} on the provider)");
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                        hyper_util::rt::TokioIo::new(upgraded),
                        tokio_tungstenite::tungstenite::protocol::Role::Server,
                        None,
                    )
                    .await;
                    exec::bridge(ws, process, protocol, what).await;
                }
                Err(e) => tracing::debug!(%what, error = %e, "the upgrade failed"),
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut response = Response::new(full_body(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        headers.insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static("websocket"),
        );
        headers.insert(
            hyper::header::SEC_WEBSOCKET_PROTOCOL,
            hyper::header::HeaderValue::from_static(protocol.name()),
        );
        if let Ok(accept) = hyper::header::HeaderValue::from_str(&accept) {
            headers.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }

    async fn logs(&self, namespace: &str, pod: &str, params: LogParams) -> Response<Body> {
        let remote_namespace = match self.remote_namespace(namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => {
                // 502, not 404: the API server drops the body of a kubelet's 404 (the user
                // would read "could not find the requested resource") but quotes the body of
                // other 5xx answers.
                return text(
                    StatusCode::BAD_GATEWAY,
                    not_offloaded(namespace, pod, "read the logs of"),
                );
            }
            Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let api: Api<Pod> = Api::namespaced(self.remote.clone(), &remote_namespace);
        tracing::debug!(%namespace, %pod, %remote_namespace, "streaming logs from the provider");
        let reader = match api.log_stream(pod, &params).await {
            Ok(r) => r,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("the provider refused the logs of {remote_namespace}/{pod}: {e}"),
                );
            }
        };
        let lines = reader.lines().map(|line| {
            line.map(|mut l| {
                l.push('\n');
                Frame::data(Bytes::from(l))
            })
        });
        let body = http_body_util::StreamBody::new(lines).boxed_unsync();
        let mut response = Response::new(body);
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain"),
        );
        response
    }
}

/// Serves the kubelet API over TLS on `listener` until `shutdown` completes.
///
/// # Errors
///
/// [`Error::Webhook`] when the certificate cannot be loaded.
pub async fn serve(
    api: KubeletApi,
    listener: tokio::net::TcpListener,
    certificate: &ServingCertificate,
    client_ca_pem: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve_tls_authenticated(
        listener,
        certificate,
        client_ca_pem,
        move |req| api.clone().handle(req),
        shutdown,
    )
    .await
    .map_err(|e| Error::Webhook(e.to_string()))
}

/// The client CA of the home cluster: the bundle kube-apiserver trusts for client
/// certificates (`client-ca-file` of ConfigMap `kube-system/extension-apiserver-authentication`,
/// which the API server publishes), the CA of the certificate it presents to kubelets.
///
/// # Errors
///
/// [`Error::Kube`] when it cannot be read, [`Error::InvalidConfig`] when it is missing.
pub async fn client_ca(home: &Client) -> Result<String> {
    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(home.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .map_err(Error::kube(
            "reading the client CA (ConfigMap kube-system/extension-apiserver-authentication)",
        ))?;
    cm.data
        .and_then(|mut d| d.remove("client-ca-file"))
        .filter(|ca| !ca.trim().is_empty())
        .ok_or_else(|| {
            Error::InvalidConfig(
                "ConfigMap kube-system/extension-apiserver-authentication has no client-ca-file: \
                 start kube-apiserver with --client-ca-file"
                    .to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_node_subresources_as_the_kubelet_does() {
        use hyper::Method;
        assert_eq!(
            attributes(&Method::POST, "/exec/demo/web/nginx"),
            ("create", "proxy")
        );
        assert_eq!(
            attributes(&Method::GET, "/containerLogs/demo/web/nginx"),
            ("get", "proxy")
        );
        assert_eq!(attributes(&Method::GET, "/logs/"), ("get", "log"));
        assert_eq!(attributes(&Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(attributes(&Method::GET, "/metrics"), ("get", "metrics"));
        assert_eq!(attributes(&Method::GET, "/healthz"), ("get", "proxy"));
    }

    #[test]
    fn routes_and_log_parameters() {
        assert_eq!(
            route("/containerLogs/demo/web-1/nginx"),
            Route::Logs {
                namespace: "demo".into(),
                pod: "web-1".into(),
                container: "nginx".into()
            }
        );
        assert_eq!(
            route("/exec/demo/web/nginx"),
            Route::Stream {
                kind: StreamKind::Exec,
                namespace: "demo".into(),
                pod: "web".into(),
                container: "nginx".into()
            }
        );
        assert_eq!(
            route("/attach/demo/web/0123-uid/nginx"),
            Route::Stream {
                kind: StreamKind::Attach,
                namespace: "demo".into(),
                pod: "web".into(),
                container: "nginx".into()
            }
        );
        assert_eq!(route("/exec/demo/web"), Route::NotFound);
        assert_eq!(
            route("/portForward/demo/web"),
            Route::PortForward {
                namespace: "demo".into(),
                pod: "web".into()
            }
        );
        assert_eq!(route("/healthz"), Route::Healthz);
        assert_eq!(route("/nope"), Route::NotFound);
        let p = log_params(
            "c",
            Some("follow=true&tailLines=10&timestamps=1&sinceSeconds=5"),
        );
        assert!(p.follow && p.timestamps && !p.previous);
        assert_eq!((p.tail_lines, p.since_seconds), (Some(10), Some(5)));
        assert_eq!(p.container.as_deref(), Some("c"));
    }
}
