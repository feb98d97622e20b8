//! The offloading webhooks over TLS: serves the decisions of [`webhook`](super::webhook)
//! (`/mutate/pod`, `/validate/namespace-offloading`) and, on providers, of
//! [`shadowpod_admission`](super::shadowpod_admission) (`/mutate/shadowpods`,
//! `/validate/shadowpods`: what a tenant may run, within its quota) with [`liqo_core::webhook`], and
//! registers them with the API server as upstream does (pods are mutated only in namespaces
//! labelled `liqo.io/scheduling-enabled=true`, on CREATE; objects labelled
//! `liqo.io/webhook-skip=true` are left alone).
//!
//! ```no_run
//! use liqo_core::webhook::ServingCertificate;
//! use liqo_reflect::offloading::admission::{self, WebhookOptions};
//!
//! # async fn f(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let options = WebhookOptions::new("https://127.0.0.1:9443".parse()?);
//! let cert = ServingCertificate::self_signed(&[], &["127.0.0.1".parse()?])?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
//! admission::register(&client, &options, &cert).await?;
//! admission::serve(client, listener, &cert, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use liqo_core::api::offloading::v1beta1::{
    NAMESPACE_OFFLOADING_NAME, NamespaceOffloading, PodOffloadingStrategy,
};
use liqo_core::labels;
use liqo_core::webhook::{AdmissionRequest, AdmissionResponse, ServingCertificate, WebhookServer};

use super::shadowpod_admission::{ShadowPodAdmission, creator_patch};
use super::webhook::{
    local_strategy_refusal, mutate_pod, offloading_possible, validate_namespace_offloading,
};
use crate::{Error, Result};

/// Path of the pod mutation.
pub const MUTATE_POD_PATH: &str = "/mutate/pod";
/// Path of the ShadowPod mutation (creator label).
pub const MUTATE_SHADOWPOD_PATH: &str = "/mutate/shadowpods";
/// Path of the ShadowPod validation (Pod Security level, quota).
pub const VALIDATE_SHADOWPOD_PATH: &str = "/validate/shadowpods";
/// Path of the NamespaceOffloading validation.
pub const VALIDATE_NAMESPACE_OFFLOADING_PATH: &str = "/validate/namespace-offloading";
/// Name of the MutatingWebhookConfiguration.
pub const MUTATING_CONFIGURATION: &str = "liqo-mutating-webhook";
/// Name of the ValidatingWebhookConfiguration.
pub const VALIDATING_CONFIGURATION: &str = "liqo-validating-webhook";
const FIELD_MANAGER: &str = "liqo-webhook";

/// Where the API server reaches the webhooks, and how it treats a failure.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebhookOptions {
    /// Base URL the API server calls (`https://host:port`).
    pub url: url_base::Url,
    /// `Fail` (upstream's default: no pod is created unmutated) or `Ignore`.
    pub failure_policy: String,
}

/// A minimal base URL (scheme, host, port), without a URL crate.
pub mod url_base {
    /// `https://host:port`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Url(String);

    impl Url {
        /// The URL with `path` appended.
        #[must_use]
        pub fn join(&self, path: &str) -> String {
            format!("{}{path}", self.0.trim_end_matches('/'))
        }

        /// The host part (an IP address or a DNS name).
        #[must_use]
        pub fn host(&self) -> &str {
            let rest = self.0.trim_start_matches("https://");
            let authority = rest.split('/').next().unwrap_or(rest);
            if let Some(v6) = authority.strip_prefix('[') {
                return v6.split(']').next().unwrap_or(v6);
            }
            authority.split(':').next().unwrap_or(authority)
        }
    }

    impl std::str::FromStr for Url {
        type Err = String;

        fn from_str(s: &str) -> Result<Self, Self::Err> {
            if !s.starts_with("https://") || s.len() <= "https://".len() {
                return Err(format!("{s:?}: webhooks need an https:// URL"));
            }
            Ok(Self(s.to_owned()))
        }
    }

    impl std::fmt::Display for Url {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
}

impl WebhookOptions {
    /// Options for webhooks reached at `url`, failing closed as upstream.
    #[must_use]
    pub fn new(url: url_base::Url) -> Self {
        Self {
            url,
            failure_policy: "Fail".to_owned(),
        }
    }
}

/// The names and addresses the serving certificate must carry for `options.url`.
#[must_use]
pub fn certificate_names(options: &WebhookOptions) -> (Vec<String>, Vec<std::net::IpAddr>) {
    let host = options.url.host();
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => (Vec::new(), vec![ip]),
        Err(_) => (vec![host.to_owned()], Vec::new()),
    }
}

/// The pod mutation: pods created in a namespace labelled `liqo.io/scheduling-enabled=true`
/// are refused until offloading is possible ([`offloading_possible`]), then get the toleration
/// and node affinity of the NamespaceOffloading's strategy ([`mutate_pod`]); with the `Local`
/// strategy, pods targeting a virtual node are refused ([`local_strategy_refusal`]).
async fn admit_pod(client: Client, request: AdmissionRequest) -> AdmissionResponse {
    let (Some(ns), Some(object)) = (request.namespace.clone(), request.object.clone()) else {
        return AdmissionResponse::allow(&request);
    };
    let pod: Pod = match serde_json::from_value(object) {
        Ok(p) => p,
        Err(e) => return AdmissionResponse::deny(&request, format!("not a Pod: {e}")),
    };
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        == Some(super::webhook::LIQO_RUNTIME_CLASS)
    {
        return AdmissionResponse::allow(&request);
    }
    let offloading = match Api::<NamespaceOffloading>::namespaced(client.clone(), &ns)
        .get_opt(NAMESPACE_OFFLOADING_NAME)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            return AdmissionResponse::deny(
                &request,
                format!("cannot read the NamespaceOffloading of namespace {ns} ({e}); retry"),
            );
        }
    };
    if let Err(message) = offloading_possible(&ns, offloading.as_ref()) {
        return AdmissionResponse::deny(&request, message);
    }
    let Some(offloading) = offloading else {
        return AdmissionResponse::allow(&request);
    };
    let strategy = offloading.spec.pod_offloading_strategy;
    if strategy == PodOffloadingStrategy::Local {
        let virtual_node = match pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            Some(node) => match Api::<Node>::all(client).get_opt(&node).await {
                Ok(n) => n
                    .filter(|n| labels::is_virtual_node(n.labels()))
                    .map(|_| node),
                Err(e) => {
                    return AdmissionResponse::deny(
                        &request,
                        format!("cannot read node {node} ({e}); retry"),
                    );
                }
            },
            None => None,
        };
        if let Some(message) =
            local_strategy_refusal(&pod, &ns, |n| virtual_node.as_deref() == Some(n))
        {
            return AdmissionResponse::deny(&request, message);
        }
    }
    let mutated = mutate_pod(&pod, strategy, offloading.spec.cluster_selector.as_ref());
    if mutated.spec == pod.spec {
        return AdmissionResponse::allow(&request);
    }
    match serde_json::to_value(&mutated.spec) {
        Ok(spec) => AdmissionResponse::patch(
            &request,
            &[serde_json::json!({"op": "replace", "path": "/spec", "value": spec})],
        ),
        Err(e) => AdmissionResponse::deny(&request, format!("cannot encode the pod spec: {e}")),
    }
}

fn admit_namespace_offloading(request: &AdmissionRequest) -> AdmissionResponse {
    let parse = |v: &Option<serde_json::Value>| {
        v.clone()
            .filter(|v| !v.is_null())
            .map(serde_json::from_value::<NamespaceOffloading>)
            .transpose()
    };
    let (new, old) = match (parse(&request.object), parse(&request.old_object)) {
        (Ok(Some(new)), Ok(old)) => (new, old),
        (Ok(None), _) => return AdmissionResponse::allow(request),
        (Err(e), _) | (_, Err(e)) => {
            return AdmissionResponse::deny(request, format!("not a NamespaceOffloading: {e}"));
        }
    };
    match validate_namespace_offloading(&new, old.as_ref()) {
        Ok(()) => AdmissionResponse::allow(request),
        Err(message) => AdmissionResponse::deny(request, message),
    }
}

/// Serves the offloading webhooks on `listener` until `shutdown` completes.
///
/// # Errors
///
/// [`Error::Webhook`] when the certificate cannot be loaded.
pub async fn serve(
    client: Client,
    listener: tokio::net::TcpListener,
    certificate: &ServingCertificate,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (shadowpods, caches) = ShadowPodAdmission::start(client.clone());
    let shadowpods = std::sync::Arc::new(shadowpods);
    let caches = tokio::spawn(caches);
    let served = WebhookServer::new()
        .route(MUTATE_POD_PATH, move |req| admit_pod(client.clone(), req))
        .route(MUTATE_SHADOWPOD_PATH, |req| async move {
            let patch = creator_patch(&req);
            AdmissionResponse::patch(&req, &patch)
        })
        .route(VALIDATE_SHADOWPOD_PATH, move |req| {
            let shadowpods = shadowpods.clone();
            async move { shadowpods.validate(req).await }
        })
        .route(VALIDATE_NAMESPACE_OFFLOADING_PATH, |req| async move {
            admit_namespace_offloading(&req)
        })
        .serve(listener, certificate, shutdown)
        .await
        .map_err(|e| Error::Webhook(e.to_string()));
    caches.abort();
    served
}

fn client_config(options: &WebhookOptions, ca: &ByteString, path: &str) -> WebhookClientConfig {
    WebhookClientConfig {
        url: Some(options.url.join(path)),
        ca_bundle: Some(ca.clone()),
        service: None,
    }
}

fn skip_selector() -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: labels::core::WEBHOOK_SKIP.to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(vec![labels::TRUE.to_owned()]),
        }]),
        match_labels: None,
    }
}

fn rule(group: &str, resource: &str, operations: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.to_owned()]),
        api_versions: Some(vec!["*".to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        operations: Some(operations.iter().map(|o| (*o).to_owned()).collect()),
        scope: Some("Namespaced".to_owned()),
    }
}

/// The two webhook configurations, pure (for `register` and for manifests).
#[must_use]
pub fn configurations(
    options: &WebhookOptions,
    certificate: &ServingCertificate,
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    let ca = ByteString(certificate.ca_pem.as_bytes().to_vec());
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([(
            labels::core::WEBHOOK.to_owned(),
            labels::TRUE.to_owned(),
        )])),
        ..ObjectMeta::default()
    };
    let mutating_hook = |name: &str, path: &str, rule: RuleWithOperations| MutatingWebhook {
        name: name.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config: client_config(options, &ca, path),
        failure_policy: Some(options.failure_policy.clone()),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(10),
        rules: Some(vec![rule]),
        ..MutatingWebhook::default()
    };
    let validating_hook = |name: &str, path: &str, rule: RuleWithOperations| ValidatingWebhook {
        name: name.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config: client_config(options, &ca, path),
        failure_policy: Some(options.failure_policy.clone()),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(10),
        rules: Some(vec![rule]),
        ..ValidatingWebhook::default()
    };
    let shadowpods = || rule("offloading.liqo.io", "shadowpods", &["CREATE", "UPDATE"]);
    let mutating = MutatingWebhookConfiguration {
        metadata: meta(MUTATING_CONFIGURATION),
        webhooks: Some(vec![
            MutatingWebhook {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        labels::offloading::SCHEDULING_ENABLED.to_owned(),
                        labels::TRUE.to_owned(),
                    )])),
                    match_expressions: None,
                }),
                object_selector: Some(skip_selector()),
                ..mutating_hook(
                    "pod.mutate.liqo.io",
                    MUTATE_POD_PATH,
                    rule("", "pods", &["CREATE"]),
                )
            },
            // No liqo.io/webhook-skip opt-out: the label is what the quota counts.
            mutating_hook(
                "shadowpod.mutate.liqo.io",
                MUTATE_SHADOWPOD_PATH,
                shadowpods(),
            ),
        ]),
    };
    let validating = ValidatingWebhookConfiguration {
        metadata: meta(VALIDATING_CONFIGURATION),
        webhooks: Some(vec![
            ValidatingWebhook {
                object_selector: Some(skip_selector()),
                ..validating_hook(
                    "namespaceoffloading.validate.liqo.io",
                    VALIDATE_NAMESPACE_OFFLOADING_PATH,
                    rule(
                        "offloading.liqo.io",
                        "namespaceoffloadings",
                        &["CREATE", "UPDATE"],
                    ),
                )
            },
            // Tenants cannot opt out with liqo.io/webhook-skip: no object selector.
            validating_hook(
                "shadowpod.validate.liqo.io",
                VALIDATE_SHADOWPOD_PATH,
                shadowpods(),
            ),
        ]),
    };
    (mutating, validating)
}

/// Creates or updates the webhook configurations (server-side apply; idempotent, and a
/// restart with a new certificate updates the CA bundle).
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses them.
pub async fn register(
    client: &Client,
    options: &WebhookOptions,
    certificate: &ServingCertificate,
) -> Result<()> {
    let (mutating, validating) = configurations(options, certificate);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(MUTATING_CONFIGURATION, &params, &Patch::Apply(&mutating))
        .await
        .map_err(Error::kube(format!("registering {MUTATING_CONFIGURATION}")))?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            VALIDATING_CONFIGURATION,
            &params,
            &Patch::Apply(&validating),
        )
        .await
        .map_err(Error::kube(format!(
            "registering {VALIDATING_CONFIGURATION}"
        )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_and_certificate_names() {
        let options = WebhookOptions::new("https://127.0.0.1:9443".parse().unwrap());
        assert_eq!(
            options.url.join(MUTATE_POD_PATH),
            "https://127.0.0.1:9443/mutate/pod"
        );
        assert_eq!(
            certificate_names(&options).1,
            vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        let dns = WebhookOptions::new("https://liqo-webhook.liqo.svc:443/".parse().unwrap());
        assert_eq!(dns.url.host(), "liqo-webhook.liqo.svc");
        assert!("http://x".parse::<url_base::Url>().is_err());
    }

    #[test]
    fn namespace_offloading_admission() {
        let req = |name: &str| AdmissionRequest {
            uid: "u".into(),
            operation: "CREATE".into(),
            object: Some(serde_json::json!({
                "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
                "metadata": {"name": name, "namespace": "demo"}, "spec": {}
            })),
            ..AdmissionRequest::default()
        };
        assert!(admit_namespace_offloading(&req("offloading")).allowed);
        let denied = admit_namespace_offloading(&req("other"));
        assert!(!denied.allowed);
        assert!(denied.status.unwrap().message.contains("offloading"));
    }
}
