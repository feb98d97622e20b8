//! The kubelet API of the virtual kubelet (HTTPS on the Node's InternalIP and kubelet port):
//! what the home API server calls for `kubectl logs`. Logs of an offloaded pod are streamed
//! from the provider's API server (`pods/log` of the twin pod in the remote namespace, found
//! through the NamespaceMaps), with `container`, `follow`, `tailLines`, `timestamps`,
//! `sinceSeconds`, `limitBytes` and `previous` passed on.
//!
//! `exec`, `attach` and `portForward` are answered 501 (not implemented), with a message saying
//! so, instead of hanging.

use std::future::Future;

use futures::{AsyncBufReadExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use liqo_core::api::offloading::v1beta1::NamespaceMap;
use liqo_core::webhook::{Body, ServingCertificate, full_body, serve_tls};

use super::accepted_pairs;
use crate::{Error, Result};

/// What the kubelet API needs.
#[derive(Clone)]
pub struct KubeletApi {
    home: Client,
    remote: Client,
    tenant_namespace: String,
}

impl std::fmt::Debug for KubeletApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletApi")
            .field("tenant_namespace", &self.tenant_namespace)
            .finish_non_exhaustive()
    }
}

/// A parsed kubelet API path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Logs {
        namespace: String,
        pod: String,
        container: String,
    },
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
        ["exec", ..] => Route::Unsupported("exec"),
        ["attach", ..] => Route::Unsupported("attach"),
        ["portForward", ..] => Route::Unsupported("port-forward"),
        ["run", ..] => Route::Unsupported("run"),
        ["stats", ..] | ["metrics", ..] => Route::Unsupported("stats and metrics"),
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

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(full_body(message));
    *response.status_mut() = status;
    response
}

impl KubeletApi {
    /// The API of the virtual kubelet whose provider is reached with `remote`; NamespaceMaps
    /// are read from `tenant_namespace` of the home cluster.
    #[must_use]
    pub fn new(home: Client, remote: Client, tenant_namespace: impl Into<String>) -> Self {
        Self {
            home,
            remote,
            tenant_namespace: tenant_namespace.into(),
        }
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
        }
    }

    async fn logs(&self, namespace: &str, pod: &str, params: LogParams) -> Response<Body> {
        let remote_namespace = match self.remote_namespace(namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("namespace {namespace} is not offloaded to this virtual node"),
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
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve_tls(
        listener,
        certificate,
        move |req| api.clone().handle(req),
        shutdown,
    )
    .await
    .map_err(|e| Error::Webhook(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(route("/exec/demo/web/nginx"), Route::Unsupported("exec"));
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
