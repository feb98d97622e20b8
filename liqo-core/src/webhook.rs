//! Admission webhooks served over TLS (feature `webhook`): the review types of
//! `admission.k8s.io/v1`, a self-signed serving certificate, and a small HTTPS server routing
//! each path to a handler.
//!
//! The controller-manager serves Liqo's webhooks with it (pod mutation for offloaded
//! namespaces, NamespaceOffloading validation) and registers them with the API server
//! (`MutatingWebhookConfiguration`/`ValidatingWebhookConfiguration` whose `clientConfig`
//! carries the URL and [`ServingCertificate::ca_pem`]).
//!
//! ```no_run
//! use liqo_core::webhook::{AdmissionResponse, ServingCertificate, WebhookServer};
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let cert = ServingCertificate::self_signed(&["localhost".into()], &["127.0.0.1".parse()?])?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
//! WebhookServer::new()
//!     .route("/validate/anything", |req| async move {
//!         if req.name.as_deref() == Some("forbidden") {
//!             AdmissionResponse::deny(&req, "this name is reserved")
//!         } else {
//!             AdmissionResponse::allow(&req)
//!         }
//!     })
//!     .serve(listener, &cert, std::future::pending())
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors of the webhook server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The serving certificate could not be generated or loaded.
    #[error("serving certificate: {0}")]
    Certificate(String),
    /// The listener failed.
    #[error("webhook server: {0}")]
    Io(#[from] std::io::Error),
}

/// The identity of a resource kind in a review.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// Who asked for the change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An admission request (`AdmissionReview.request`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Request id, echoed in the response.
    pub uid: String,
    /// Kind of the object.
    #[serde(default)]
    pub kind: GroupVersionKind,
    /// Name of the object (may be empty on CREATE with generateName).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace of the object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// The object as it would be stored.
    #[serde(default)]
    pub object: Option<Value>,
    /// The object before an UPDATE or DELETE.
    #[serde(default)]
    pub old_object: Option<Value>,
    /// The requesting user.
    #[serde(default)]
    pub user_info: UserInfo,
    /// Whether the request is a dry run.
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// The status of a refused request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    /// Why.
    pub message: String,
    /// HTTP-like code (403 for a refusal).
    pub code: u16,
}

/// An admission response (`AdmissionReview.response`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request id.
    pub uid: String,
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Base64 of a JSON Patch (RFC 6902) to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// `JSONPatch` when `patch` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
}

impl AdmissionResponse {
    /// Allows `request` unchanged.
    #[must_use]
    pub fn allow(request: &AdmissionRequest) -> Self {
        Self {
            uid: request.uid.clone(),
            allowed: true,
            ..Self::default()
        }
    }

    /// Refuses `request` with `message` (shown to the user by kubectl).
    #[must_use]
    pub fn deny(request: &AdmissionRequest, message: impl Into<String>) -> Self {
        Self {
            uid: request.uid.clone(),
            allowed: false,
            status: Some(ResponseStatus {
                message: message.into(),
                code: 403,
            }),
            ..Self::default()
        }
    }

    /// Allows `request` with the JSON Patch operations `patch` (none: unchanged).
    #[must_use]
    pub fn patch(request: &AdmissionRequest, patch: &[Value]) -> Self {
        let mut response = Self::allow(request);
        if !patch.is_empty() {
            let json = Value::Array(patch.to_vec()).to_string();
            response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
            response.patch_type = Some("JSONPatch".to_owned());
        }
        response
    }
}

/// `AdmissionReview` of `admission.k8s.io/v1`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionReview`.
    pub kind: String,
    /// The request (in what the API server sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest>,
    /// The response (in what the webhook answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

/// A TLS serving certificate with the self-signed CA that issued it.
#[derive(Clone)]
pub struct ServingCertificate {
    /// The CA certificate, PEM: what goes into the webhook configuration's `caBundle`.
    pub ca_pem: String,
    /// The serving certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for ServingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCertificate").finish_non_exhaustive()
    }
}

impl ServingCertificate {
    /// A fresh CA and a serving certificate for `dns_names` and `ips`, valid for a year.
    ///
    /// ```
    /// use liqo_core::webhook::ServingCertificate;
    ///
    /// let cert = ServingCertificate::self_signed(&["liqo-webhook.liqo.svc".into()], &[]).unwrap();
    /// assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    /// assert_ne!(cert.ca_pem, cert.cert_pem);
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebhookError::Certificate`] when a name is not valid in a certificate.
    pub fn self_signed(dns_names: &[String], ips: &[IpAddr]) -> Result<Self, WebhookError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, SanType,
        };
        let err = |e: rcgen::Error| WebhookError::Certificate(e.to_string());
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::CommonName, "liqo-webhook-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().map_err(err)?;
        let mut leaf = CertificateParams::new(dns_names.to_vec()).map_err(err)?;
        leaf.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        leaf.distinguished_name
            .push(DnType::CommonName, "liqo-webhook");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn tls_config(&self) -> Result<rustls::ServerConfig, WebhookError> {
        self.tls_config_with_clients(None)
    }

    /// The TLS configuration; with `client_ca_pem`, clients must present a certificate
    /// issued by one of its CAs (mutual TLS, as a kubelet requires of the API server).
    fn tls_config_with_clients(
        &self,
        client_ca_pem: Option<&str>,
    ) -> Result<rustls::ServerConfig, WebhookError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let err = |e: &dyn std::fmt::Display| WebhookError::Certificate(e.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| err(&e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?;
        let builder = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(ca.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
                }
                if roots.is_empty() {
                    return Err(WebhookError::Certificate(
                        "the client CA bundle holds no certificate".into(),
                    ));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| err(&e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder.with_single_cert(certs, key).map_err(|e| err(&e))
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = AdmissionResponse> + Send>>;
type Handler = Arc<dyn Fn(AdmissionRequest) -> BoxFuture + Send + Sync>;

/// An HTTPS server answering `AdmissionReview`s, one handler per path.
#[derive(Clone, Default)]
pub struct WebhookServer {
    routes: BTreeMap<String, Handler>,
}

impl std::fmt::Debug for WebhookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServer")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookServer {
    /// A server without routes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `path` with `handler`.
    #[must_use]
    pub fn route<F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        F: Fn(AdmissionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AdmissionResponse> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.routes.insert(path.to_owned(), handler);
        self
    }

    /// Serves HTTPS on `listener` until `shutdown` completes. A request that is not a
    /// well-formed review gets HTTP 400; an unknown path 404.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Certificate`] when the certificate cannot be loaded.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        certificate: &ServingCertificate,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WebhookError> {
        let routes = Arc::new(self.routes);
        serve_tls(
            listener,
            certificate,
            move |req| {
                let routes = Arc::clone(&routes);
                async move {
                    handle(&routes, req)
                        .await
                        .map(|body| body.map_err(|never| match never {}).boxed_unsync())
                }
            },
            shutdown,
        )
        .await
    }
}

/// A response body that may stream (logs) or not.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// A complete response body.
#[must_use]
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The user a verified client certificate names: its subject's common name, and its
/// organizations as groups (the way kube-apiserver reads client certificates). Put in the
/// request's extensions by [`serve_tls_authenticated`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's common name.
    pub user: String,
    /// The subject's organizations.
    pub groups: Vec<String>,
}

impl ClientIdentity {
    /// Reads the identity of a DER certificate.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Certificate`] when it does not parse.
    pub fn from_der(der: &[u8]) -> Result<Self, WebhookError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| WebhookError::Certificate(format!("client certificate: {e}")))?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        Ok(Self { user, groups })
    }
}

/// Limits of the HTTPS servers: what a client that never finishes, or sends too much, can
/// hold. Webhook bodies are capped at [`MAX_BODY_BYTES`].
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a connection may take to send a request's headers (idle keep-alive included).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 512;
/// The largest webhook request body read (kube-apiserver itself caps objects at 3 MiB).
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Serves HTTPS (HTTP/1.1) on `listener` with `handler` until `shutdown` completes: the
/// server under [`WebhookServer`]. A TLS handshake must end within 10 s and the headers of
/// each request (an idle keep-alive connection included) arrive within 30 s; at most 512
/// connections are served at once.
///
/// # Errors
///
/// [`WebhookError::Certificate`] when the certificate cannot be loaded.
pub async fn serve_tls<F, Fut>(
    listener: tokio::net::TcpListener,
    certificate: &ServingCertificate,
    handler: F,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebhookError>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve(listener, certificate.tls_config()?, handler, shutdown).await
}

/// Like [`serve_tls`], but every client must present a certificate issued by a CA of
/// `client_ca_pem` (others fail the handshake); its [`ClientIdentity`] is in each request's
/// extensions, for the handler to authorize. The virtual kubelet's kubelet API is served this
/// way, as a kubelet is.
///
/// # Errors
///
/// [`WebhookError::Certificate`] when a certificate or the CA bundle cannot be loaded.
pub async fn serve_tls_authenticated<F, Fut>(
    listener: tokio::net::TcpListener,
    certificate: &ServingCertificate,
    client_ca_pem: &str,
    handler: F,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebhookError>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let tls = certificate.tls_config_with_clients(Some(client_ca_pem))?;
    serve(listener, tls, handler, shutdown).await
}

async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    mut tls: rustls::ServerConfig,
    handler: F,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebhookError>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTPS server: accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "HTTPS server: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "HTTPS server: TLS handshake timed out");
                    return;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|der| ClientIdentity::from_der(der).ok());
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let handler = handler.clone();
                if let Some(identity) = &identity {
                    req.extensions_mut().insert(identity.clone());
                }
                async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades()
                .await
            {
                tracing::debug!(%peer, error = %e, "HTTPS server: connection failed");
            }
        });
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(
    routes: &BTreeMap<String, Handler>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(handler) = routes.get(req.uri().path()).cloned() else {
        return reply(
            StatusCode::NOT_FOUND,
            format!("no webhook at {}", req.uri().path()),
        );
    };
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the review is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(e) => return reply(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
    };
    let review: AdmissionReview = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("not an AdmissionReview: {e}"),
            );
        }
    };
    let Some(request) = review.request else {
        return reply(
            StatusCode::BAD_REQUEST,
            "AdmissionReview without request".to_owned(),
        );
    };
    let response = handler(request).await;
    let answer = AdmissionReview {
        api_version: "admission.k8s.io/v1".to_owned(),
        kind: "AdmissionReview".to_owned(),
        request: None,
        response: Some(response),
    };
    match serde_json::to_string(&answer) {
        Ok(json) => reply(StatusCode::OK, json),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn responses_carry_the_uid_and_a_base64_patch() {
        let req = AdmissionRequest {
            uid: "u1".into(),
            operation: "CREATE".into(),
            ..AdmissionRequest::default()
        };
        let denied = AdmissionResponse::deny(&req, "no");
        assert_eq!((denied.uid.as_str(), denied.allowed), ("u1", false));
        let patched = AdmissionResponse::patch(
            &req,
            &[serde_json::json!({"op": "add", "path": "/a", "value": 1})],
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(patched.patch.unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            r#"[{"op":"add","path":"/a","value":1}]"#
        );
        assert_eq!(patched.patch_type.as_deref(), Some("JSONPatch"));
        assert!(AdmissionResponse::patch(&req, &[]).patch.is_none());
    }

    #[test]
    fn reviews_parse_as_the_api_server_sends_them() {
        let json = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"x","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"namespace":"demo",
            "operation":"CREATE","userInfo":{"username":"admin","groups":["system:masters"]},
            "object":{"metadata":{"name":"p"}},"oldObject":null,"dryRun":false}}"#;
        let review: AdmissionReview = serde_json::from_str(json).unwrap();
        let req = review.request.unwrap();
        assert_eq!(req.kind.kind, "Pod");
        assert_eq!(req.namespace.as_deref(), Some("demo"));
        assert_eq!(req.user_info.username, "admin");
    }

    #[test]
    fn certificates_load_into_rustls() {
        let cert =
            ServingCertificate::self_signed(&["localhost".into()], &["127.0.0.1".parse().unwrap()])
                .unwrap();
        cert.tls_config().unwrap();
    }
}
