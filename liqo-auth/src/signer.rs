//! Signing certificate requests through the Kubernetes CSR API of the local (provider) cluster,
//! with the `kubernetes.io/kube-apiserver-client` signer: the resulting certificate is a client
//! certificate the provider's API server trusts.
//!
//! ```no_run
//! # async fn f(client: kube::Client, csr_pem: String) -> liqo_auth::Result<()> {
//! use liqo_auth::signer::KubernetesSigner;
//!
//! let signer = KubernetesSigner::new(client);
//! let cert_pem = signer.sign("rome", csr_pem.as_bytes()).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::error::{Error, Result};
use crate::names;

/// The signer of client certificates of the API server.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// Signs certificate requests with the Kubernetes CSR API.
#[derive(Clone)]
pub struct KubernetesSigner {
    client: kube::Client,
    expiration: Option<Duration>,
    timeout: Duration,
}

impl std::fmt::Debug for KubernetesSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSigner")
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl KubernetesSigner {
    /// A signer using `client` (which must be allowed to create and approve CSRs).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            expiration: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Requested lifetime of the certificates (`spec.expirationSeconds`, at least 600 s; the
    /// signer may shorten it). Default: the signer's default (one year in Kubernetes).
    pub fn expiration(mut self, expiration: Option<Duration>) -> Self {
        self.expiration = expiration;
        self
    }

    /// The CA certificate (PEM) clients use to trust this cluster's API server: the
    /// `kube-root-ca.crt` ConfigMap of `namespace`.
    ///
    /// # Errors
    ///
    /// [`Error::Kube`] or [`Error::Incomplete`].
    pub async fn cluster_ca(&self, namespace: &str) -> Result<Vec<u8>> {
        let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
            self.client.clone(),
            namespace,
        )
        .get("kube-root-ca.crt")
        .await
        .map_err(Error::kube(format!(
            "reading ConfigMap {namespace}/kube-root-ca.crt"
        )))?;
        cm.data
            .and_then(|d| d.get("ca.crt").cloned())
            .map(String::into_bytes)
            .ok_or_else(|| Error::Incomplete {
                object: format!("ConfigMap {namespace}/kube-root-ca.crt"),
                reason: "no ca.crt".into(),
            })
    }

    /// Has `csr_pem` signed for `common_name` and returns the PEM certificate. Idempotent: the
    /// Kubernetes CSR is named after the request, reused if it exists, deleted at the end.
    ///
    /// # Errors
    ///
    /// [`Error::Kube`], or [`Error::Certificate`] if the request is denied, fails or is not
    /// signed within 30 seconds (is the cluster's kube-controller-manager running?).
    pub async fn sign(&self, common_name: &str, csr_pem: &[u8]) -> Result<Vec<u8>> {
        let name = names::kubernetes_csr_name(common_name, csr_pem);
        let api = Api::<CertificateSigningRequest>::all(self.client.clone());
        let mut csr = CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [(
                        liqo_core::labels::kubernetes::APP_MANAGED_BY.to_owned(),
                        liqo_core::labels::core::LIQO.to_owned(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(csr_pem.to_vec()),
                signer_name: CLIENT_SIGNER.to_owned(),
                usages: Some(vec!["client auth".to_owned()]),
                expiration_seconds: self
                    .expiration
                    .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
                ..Default::default()
            },
            status: None,
        };
        match api.create(&PostParams::default(), &csr).await {
            Ok(created) => csr = created,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                csr = api
                    .get(&name)
                    .await
                    .map_err(Error::kube(format!("reading CSR {name}")))?;
            }
            Err(e) => return Err(Error::kube(format!("creating CSR {name}"))(e)),
        }
        let approved = csr
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Approved"));
        if !approved {
            let patch = serde_json::json!({"status": {"conditions": [{
                "type": "Approved", "status": "True", "reason": "LiqoPeering",
                "message": "approved by the liqo-rs authentication controller",
            }]}});
            api.patch_subresource(
                "approval",
                &name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(Error::kube(format!("approving CSR {name}")))?;
        }
        let start = std::time::Instant::now();
        loop {
            let current = api
                .get(&name)
                .await
                .map_err(Error::kube(format!("reading CSR {name}")))?;
            let status = current.status.unwrap_or_default();
            if let Some(cond) = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "Denied" || c.type_ == "Failed")
            {
                let _ = api.delete(&name, &DeleteParams::default()).await;
                return Err(Error::Certificate {
                    name,
                    reason: format!(
                        "{}: {}",
                        cond.type_,
                        cond.message.clone().unwrap_or_default()
                    ),
                });
            }
            if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
                let _ = api.delete(&name, &DeleteParams::default()).await;
                return Ok(cert.0);
            }
            if start.elapsed() > self.timeout {
                return Err(Error::Certificate {
                    name,
                    reason: "not signed within 30 s: is the kube-controller-manager (CSR signer) \
                             of this cluster running?"
                        .into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
