//! The cluster's own pod and service CIDRs, detected where Kubernetes (or its installer)
//! records them, for a controller-manager started without `--pod-cidr`/`--service-cidr`.
//!
//! Kubernetes has no API for the pod CIDR (it is a kube-controller-manager flag), so the
//! sources are, in order: the kubeadm `ClusterConfiguration` in ConfigMap
//! `kube-system/kubeadm-config` (`networking.podSubnet`, `networking.serviceSubnet`; kubeadm
//! and liqo-testenv write it), kube-proxy's configuration in ConfigMap `kube-system/kube-proxy`
//! (`clusterCIDR`), and for the service CIDR the `ServiceCIDR` named `kubernetes`
//! (networking.k8s.io/v1). The parsing is pure ([`from_kubeadm`], [`from_kube_proxy`]).

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde::Deserialize;

use crate::{Error, Result};

/// What was found, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterCidrs {
    /// The pod CIDRs (empty: not found).
    pub pod: Vec<IpNetwork>,
    /// The service CIDR.
    pub service: Option<IpNetwork>,
    /// Where each was read, for the log.
    pub sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeadmConfig {
    #[serde(default)]
    networking: KubeadmNetworking,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KubeadmNetworking {
    pod_subnet: Option<String>,
    service_subnet: Option<String>,
}

fn cidrs(text: &str, what: &str) -> Result<Vec<IpNetwork>> {
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse()
                .map_err(|e| Error::InvalidConfig(format!("{what}: {c:?} is not a CIDR: {e}")))
        })
        .collect()
}

/// The pod and service CIDRs of a kubeadm `ClusterConfiguration` (YAML).
///
/// ```
/// let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n";
/// let (pod, service) = liqo_net::cluster_cidrs::from_kubeadm(text).unwrap();
/// assert_eq!(pod[0].to_string(), "10.244.0.0/16");
/// assert_eq!(service[0].to_string(), "10.96.0.0/12");
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfig`] when the text is not YAML or a subnet is not a CIDR.
pub fn from_kubeadm(text: &str) -> Result<(Vec<IpNetwork>, Vec<IpNetwork>)> {
    let config: KubeadmConfig = serde_yaml::from_str(text).map_err(|e| {
        Error::InvalidConfig(format!("kubeadm ClusterConfiguration is not valid: {e}"))
    })?;
    let n = config.networking;
    Ok((
        cidrs(n.pod_subnet.as_deref().unwrap_or_default(), "podSubnet")?,
        cidrs(
            n.service_subnet.as_deref().unwrap_or_default(),
            "serviceSubnet",
        )?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeProxyConfig {
    #[serde(default, rename = "clusterCIDR")]
    cluster_cidr: Option<String>,
}

/// The pod CIDRs of a kube-proxy configuration (`clusterCIDR`, YAML).
///
/// ```
/// let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.244.0.0/16\n";
/// assert_eq!(liqo_net::cluster_cidrs::from_kube_proxy(text).unwrap()[0].to_string(), "10.244.0.0/16");
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfig`] when the text is not YAML or `clusterCIDR` is not a CIDR.
pub fn from_kube_proxy(text: &str) -> Result<Vec<IpNetwork>> {
    let config: KubeProxyConfig = serde_yaml::from_str(text)
        .map_err(|e| Error::InvalidConfig(format!("kube-proxy configuration is not valid: {e}")))?;
    cidrs(
        config.cluster_cidr.as_deref().unwrap_or_default(),
        "clusterCIDR",
    )
}

async fn config_map(client: &Client, name: &str) -> Result<Option<ConfigMap>> {
    match Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get_opt(name)
        .await
    {
        Ok(map) => Ok(map),
        // Not allowed to look: as if it were not there.
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(Error::Kube {
            context: format!("reading ConfigMap kube-system/{name}"),
            source: e,
        }),
    }
}

/// Detects the cluster's pod and service CIDRs (see the [module](self) documentation);
/// what is not found stays empty.
///
/// # Errors
///
/// [`Error::Kube`] when the API server cannot be read, [`Error::InvalidConfig`] when a
/// source is malformed.
pub async fn detect(client: &Client) -> Result<ClusterCidrs> {
    let mut found = ClusterCidrs::default();
    if let Some(text) = config_map(client, "kubeadm-config")
        .await?
        .and_then(|m| m.data?.get("ClusterConfiguration").cloned())
    {
        let (pod, service) = from_kubeadm(&text)?;
        if !pod.is_empty() {
            found.pod = pod;
            found
                .sources
                .push("pod CIDR from ConfigMap kube-system/kubeadm-config".to_owned());
        }
        if let Some(first) = service.first() {
            found.service = Some(*first);
            found
                .sources
                .push("service CIDR from ConfigMap kube-system/kubeadm-config".to_owned());
        }
    }
    if found.pod.is_empty()
        && let Some(text) = config_map(client, "kube-proxy")
            .await?
            .and_then(|m| m.data?.get("config.conf").cloned())
    {
        found.pod = from_kube_proxy(&text)?;
        if !found.pod.is_empty() {
            found
                .sources
                .push("pod CIDR from ConfigMap kube-system/kube-proxy".to_owned());
        }
    }
    if found.service.is_none() {
        let api: Api<k8s_openapi::api::networking::v1::ServiceCIDR> = Api::all(client.clone());
        if let Ok(Some(cidr)) = api.get_opt("kubernetes").await
            && let Some(first) = cidr
                .spec
                .and_then(|s| s.cidrs)
                .and_then(|c| c.into_iter().next())
        {
            found.service = first.parse().ok();
            found
                .sources
                .push("service CIDR from ServiceCIDR kubernetes".to_owned());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_sources_say_what_is_wrong() {
        let err = from_kubeadm("networking:\n  podSubnet: not-a-cidr\n").unwrap_err();
        assert!(err.to_string().contains("podSubnet"), "{err}");
        let (pod, service) = from_kubeadm("kind: ClusterConfiguration\n").unwrap();
        assert!(pod.is_empty() && service.is_empty());
        let dual = from_kubeadm("networking:\n  podSubnet: 10.244.0.0/16,fd00::/56\n").unwrap();
        assert_eq!(dual.0.len(), 2);
        assert!(from_kube_proxy("clusterCIDR: [").is_err());
    }
}
