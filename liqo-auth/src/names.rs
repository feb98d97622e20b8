//! The exact names upstream Liqo gives to the objects of the peering flow.
//!
//! ```
//! use liqo_auth::names;
//! use liqo_core::ids::ClusterId;
//!
//! let milan = ClusterId::new("milan")?;
//! assert_eq!(names::control_plane_identity(&milan), "controlplane-milan");
//! assert_eq!(names::kubeconfig_secret("controlplane-milan"), "kubeconfig-controlplane-milan");
//! # Ok::<(), liqo_core::Error>(())
//! ```

use liqo_core::ids::ClusterId;

/// The namespace where Liqo runs.
pub const LIQO_NAMESPACE: &str = "liqo";
/// The ConfigMap (in the Liqo namespace) with the local cluster id.
pub const CLUSTER_ID_CONFIGMAP: &str = "liqo-clusterid-configmap";
/// Key of [`CLUSTER_ID_CONFIGMAP`] with the version of the controller manager that wrote it
/// (a liqo-rs addition; upstream reads the image tag of its Deployment).
pub const VERSION_CONFIGMAP_KEY: &str = "LIQO_VERSION";
/// Key of the cluster id ConfigMap with the cluster's own labels (`k=v,...`).
pub const CLUSTER_LABELS_CONFIGMAP_KEY: &str = "CLUSTER_LABELS";
/// Server-side-apply field manager of that key.
pub const CLUSTER_LABELS_FIELD_MANAGER: &str = "liqo-cluster-labels";
/// The Secret (in the tenant namespace of the consumer, on the provider) with the nonce.
pub const NONCE_SECRET: &str = "liqo-nonce";
/// The Secret (in the tenant namespace of the provider, on the consumer) with the signed nonce.
pub const SIGNED_NONCE_SECRET: &str = "liqo-signed-nonce";
/// ClusterRole bound, in its tenant namespace, to the control-plane user of a consumer.
pub const REMOTE_CONTROLPLANE_CLUSTER_ROLE: &str = "liqo-remote-controlplane";
/// ClusterRole bound (with a RoleBinding in the tenant namespace) to peering users.
pub const PEERING_USER_TENANT_CLUSTER_ROLE: &str = "liqo-peering-user-tenant-ns";
/// Role, in the Liqo namespace, bound to peering users.
pub const PEERING_USER_LIQO_ROLE: &str = "liqo-peering-user-liqo-ns";
/// Role, in each tenant namespace with a peering user, naming the Secrets it may read.
pub const PEERING_USER_SECRETS_ROLE: &str = "liqo-peering-user-secrets";
/// Prefix of the user names of peering users (`liqo-peer-user-<consumer>-<random>`).
pub const PEERING_USER_PREFIX: &str = "liqo-peer-user-";
/// Field manager of the authentication controllers.
pub const FIELD_MANAGER: &str = "liqo-authentication";
/// Field manager of the CRD replicator.
pub const REPLICATOR_FIELD_MANAGER: &str = "liqo-crd-replicator";
/// Finalizer of the Tenant controller (removes the RBAC it created).
pub const TENANT_FINALIZER: &str = liqo_core::labels::authentication::TENANT_FINALIZER;
/// Data key of kubeconfig Secrets.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Annotation of the ForeignCluster with the local liqo-rs version (liqo-rs addition).
pub const LOCAL_VERSION_ANNOTATION: &str = "liqo.io/local-version";
/// Annotation of the ForeignCluster with the peer's liqo-rs version (liqo-rs addition).
pub const REMOTE_VERSION_ANNOTATION: &str = "liqo.io/remote-version";

/// `controlplane-<provider>`: the Identity (on the consumer) for the control plane of a provider.
pub fn control_plane_identity(provider: &ClusterId) -> String {
    format!("controlplane-{provider}")
}

/// `resourceslice-<slice>`: the Identity (on the consumer) for a ResourceSlice.
pub fn resource_slice_identity(slice: &str) -> String {
    format!("resourceslice-{slice}")
}

/// `kubeconfig-<identity>`: the Secret with the kubeconfig of an Identity.
pub fn kubeconfig_secret(identity: &str) -> String {
    format!("kubeconfig-{identity}")
}

/// The RoleBinding, in the tenant namespace, binding `cluster_role` to a consumer.
pub fn tenant_role_binding(cluster_role: &str, consumer: &ClusterId) -> String {
    format!("{cluster_role}-{consumer}")
}

/// Common name of the certificate of a ResourceSlice identity:
/// `<slice>-<hex(sha256(consumer))[..12]>` (upstream `CommonNameResourceSliceCSR`).
///
/// ```
/// let cn = liqo_auth::names::resource_slice_common_name("milan", "rome");
/// assert!(cn.starts_with("milan-") && cn.len() == "milan-".len() + 12);
/// ```
pub fn resource_slice_common_name(slice: &str, consumer: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, consumer.as_bytes());
    format!("{slice}-{}", hex(&digest.as_ref()[..6]))
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Name of the Kubernetes CertificateSigningRequest used to sign `csr_pem` for `common_name`:
/// deterministic, so a restarted controller finds the request it already made.
pub fn kubernetes_csr_name(common_name: &str, csr_pem: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, csr_pem);
    let cn: String = common_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(200)
        .collect();
    format!("liqo-identity-{cn}-{}", hex(&digest.as_ref()[..6]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_names_are_deterministic_and_valid() {
        let a = kubernetes_csr_name("Rome_1", b"x");
        assert_eq!(a, kubernetes_csr_name("Rome_1", b"x"));
        assert_ne!(a, kubernetes_csr_name("Rome_1", b"y"));
        assert!(a.starts_with("liqo-identity-rome-1-"));
    }

    #[test]
    fn slice_common_name_matches_upstream_shape() {
        // sha256("rome") = 0e8a... ; first 6 bytes in hex.
        let cn = resource_slice_common_name("milan", "rome");
        let digest = ring::digest::digest(&ring::digest::SHA256, b"rome");
        assert_eq!(cn, format!("milan-{}", hex(&digest.as_ref()[..6])));
    }
}
