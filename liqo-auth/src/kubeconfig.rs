//! Kubeconfigs of identities: a client certificate signed by the provider, the consumer's
//! private key, the provider's CA and API server URL.
//!
//! ```
//! use liqo_auth::kubeconfig::{KubeconfigParts, render};
//!
//! let yaml = render(&KubeconfigParts {
//!     cluster_name: "milan".into(),
//!     user: "rome".into(),
//!     server: "https://127.0.0.1:6443".into(),
//!     ca_pem: b"-----BEGIN CERTIFICATE-----\n...".to_vec(),
//!     cert_pem: b"-----BEGIN CERTIFICATE-----\n...".to_vec(),
//!     key_pem: b"-----BEGIN PRIVATE KEY-----\n...".to_vec(),
//!     proxy_url: None,
//! })?;
//! assert!(yaml.contains("server: https://127.0.0.1:6443"));
//! # Ok::<(), liqo_auth::Error>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::{Error, Result};

/// What a kubeconfig is made of.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeconfigParts {
    /// Name of the cluster and context entries (the provider's cluster id).
    pub cluster_name: String,
    /// Name of the user entry.
    pub user: String,
    /// The API server URL.
    pub server: String,
    /// The CA certificate (PEM) of the API server.
    pub ca_pem: Vec<u8>,
    /// The client certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// The client private key (PEM).
    pub key_pem: Vec<u8>,
    /// Optional HTTP proxy to reach the API server.
    pub proxy_url: Option<String>,
}

impl std::fmt::Debug for KubeconfigParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeconfigParts")
            .field("cluster_name", &self.cluster_name)
            .field("user", &self.user)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Renders a kubeconfig (YAML).
///
/// # Errors
///
/// [`Error::Kubeconfig`] if it cannot be serialized.
pub fn render(parts: &KubeconfigParts) -> Result<String> {
    let mut cluster = serde_json::json!({
        "server": parts.server,
        "certificate-authority-data": BASE64.encode(&parts.ca_pem),
    });
    if let Some(proxy) = &parts.proxy_url {
        cluster["proxy-url"] = serde_json::Value::String(proxy.clone());
    }
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": parts.cluster_name, "cluster": cluster}],
        "users": [{"name": parts.user, "user": {
            "client-certificate-data": BASE64.encode(&parts.cert_pem),
            "client-key-data": BASE64.encode(&parts.key_pem),
        }}],
        "contexts": [{"name": parts.cluster_name, "context": {
            "cluster": parts.cluster_name, "user": parts.user,
        }}],
        "current-context": parts.cluster_name,
    });
    serde_yaml::to_string(&value).map_err(|e| Error::Kubeconfig(e.to_string()))
}

/// Builds a client from kubeconfig YAML.
///
/// # Errors
///
/// [`Error::Kubeconfig`] for a malformed kubeconfig.
pub async fn client_from_yaml(yaml: &str) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml)
        .map_err(|e| Error::Kubeconfig(format!("malformed kubeconfig: {e}")))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(format!("unusable kubeconfig: {e}")))?;
    kube::Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
}

/// The API server URL of kubeconfig YAML (its current context).
///
/// # Errors
///
/// [`Error::Kubeconfig`] for a malformed kubeconfig.
pub fn server_of(yaml: &str) -> Result<String> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml)
        .map_err(|e| Error::Kubeconfig(format!("malformed kubeconfig: {e}")))?;
    let context = kc.current_context.clone().unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| Error::Kubeconfig("no server in the current context".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_parsable_kubeconfig() {
        let yaml = render(&KubeconfigParts {
            cluster_name: "milan".into(),
            user: "rome".into(),
            server: "https://127.0.0.1:1234".into(),
            ca_pem: b"ca".to_vec(),
            cert_pem: b"cert".to_vec(),
            key_pem: b"key".to_vec(),
            proxy_url: Some("http://proxy:8118".into()),
        })
        .unwrap();
        assert_eq!(server_of(&yaml).unwrap(), "https://127.0.0.1:1234");
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("milan"));
        assert!(yaml.contains("proxy-url: http://proxy:8118"));
    }
}
