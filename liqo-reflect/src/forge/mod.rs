//! Forges: pure translations between a local object and its remote twin, with no I/O.
//!
//! A [`Forge`] says what the remote object must be for a local one (name, labels,
//! annotations and content); the [engine](crate::GenericReflector) adds the ownership labels,
//! applies it with server-side apply, deletes remote twins whose local object is gone, and
//! never touches remote objects it did not create. Keeping forges pure makes them trivial to
//! unit-test field by field and to reuse.

use liqo_core::ids::ClusterId;

pub mod configmap;
pub mod endpointslice;
pub mod ingress;
pub mod secret;
pub mod service;

pub use configmap::ConfigMapForge;
pub use endpointslice::{
    EndpointSliceForge, RemoteNodes, ShadowEndpointSliceForge,
    materialize as materialize_endpoint_slice,
};
pub use ingress::IngressForge;
pub use secret::SecretForge;
pub use service::ServiceForge;

/// What a forge knows about the reflection it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeContext {
    /// The cluster the local objects live in.
    pub local_cluster: ClusterId,
    /// The cluster receiving the twins.
    pub remote_cluster: ClusterId,
    /// The local namespace.
    pub local_namespace: String,
    /// Its twin namespace in the remote cluster.
    pub remote_namespace: String,
}

/// Pure translation of local objects of kind `K` into remote twins of kind `R` (the same kind
/// unless the twin is a "shadow", like an EndpointSlice reflected as a ShadowEndpointSlice).
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use liqo_reflect::forge::{Forge, ForgeContext};
///
/// /// Reflects ConfigMaps with an extra label.
/// struct Tagged;
///
/// impl Forge<ConfigMap> for Tagged {
///     fn remote(&self, local: &ConfigMap, _ctx: &ForgeContext) -> Option<ConfigMap> {
///         let mut remote = ConfigMap { data: local.data.clone(), ..ConfigMap::default() };
///         remote.metadata.name = local.metadata.name.clone();
///         remote.metadata.labels = Some([("example.com/tagged".into(), "yes".into())].into());
///         Some(remote)
///     }
/// }
///
/// let ctx = ForgeContext {
///     local_cluster: "rome".parse().unwrap(),
///     remote_cluster: "milan".parse().unwrap(),
///     local_namespace: "demo".into(),
///     remote_namespace: "demo-rome".into(),
/// };
/// let mut local = ConfigMap::default();
/// local.metadata.name = Some("settings".into());
/// let remote = Tagged.remote(&local, &ctx).unwrap();
/// assert_eq!(remote.metadata.name.as_deref(), Some("settings"));
/// ```
pub trait Forge<K, R = K>: Send + Sync + 'static {
    /// The remote twin of `local`: its name (defaults to the local name when `None`), labels,
    /// annotations and content. The engine sets the namespace and the ownership labels.
    /// `None` means the object must not exist remotely.
    fn remote(&self, local: &K, ctx: &ForgeContext) -> Option<R>;

    /// The status the local object should show, derived from its remote twin (for example the
    /// addresses a load balancer got remotely), as the JSON of the `status` subresource;
    /// `None` (the default) leaves the local status alone. The engine merges it into the local
    /// status when the twin changes and it is not there yet.
    fn local_status(
        &self,
        _local: &K,
        _remote: &R,
        _ctx: &ForgeContext,
    ) -> Option<serde_json::Value> {
        None
    }

    /// Whether a remote object carrying this reflection's ownership labels is a twin made by
    /// this forge (default: yes). Return `false` for objects of the same kind that another
    /// reflector writes, so this one never deletes or overwrites them.
    fn manages(&self, _remote: &R) -> bool {
        true
    }

    /// The name of the remote twin of the local object `local_name` (identity by default).
    fn remote_name(&self, local_name: &str, _ctx: &ForgeContext) -> String {
        local_name.to_owned()
    }

    /// The local name a remote twin called `remote_name` stands for (identity by default).
    fn local_name(&self, remote_name: &str, _ctx: &ForgeContext) -> String {
        remote_name.to_owned()
    }
}

/// Annotation in which `kubectl apply` records the last manifest it applied. It describes the
/// local object as the user wrote it, so it is never copied to a remote twin.
pub const LAST_APPLIED_CONFIGURATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotations the built-in forges never copy from a local object to its remote twin: the
/// reflection-control annotations ([`SKIP_REFLECTION`](liqo_core::labels::reflection::SKIP_REFLECTION),
/// [`ALLOW_REFLECTION`](liqo_core::labels::reflection::ALLOW_REFLECTION)), which steer the
/// reflection of the local object and mean nothing remotely, and
/// [`LAST_APPLIED_CONFIGURATION`].
pub const NOT_REFLECTED_ANNOTATIONS: [&str; 3] = [
    liqo_core::labels::reflection::SKIP_REFLECTION,
    liqo_core::labels::reflection::ALLOW_REFLECTION,
    LAST_APPLIED_CONFIGURATION,
];

/// The metadata of the remote twin of an object with metadata `local`: its name, its labels,
/// and its annotations minus [`NOT_REFLECTED_ANNOTATIONS`]. Everything else (namespace, uid,
/// resourceVersion, ownerReferences, finalizers, managedFields, timestamps, ...) is left empty,
/// and empty label or annotation maps become `None`, so that the result can be sent as a
/// server-side-apply intent as is.
///
/// Building block for custom forges:
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use liqo_reflect::forge::remote_metadata;
///
/// let local = ObjectMeta {
///     name: Some("settings".into()),
///     namespace: Some("demo".into()),
///     uid: Some("6a1f".into()),
///     labels: Some([("app".into(), "web".into())].into()),
///     annotations: Some([("liqo.io/allow-reflection".into(), "true".into())].into()),
///     ..ObjectMeta::default()
/// };
/// let remote = remote_metadata(&local);
/// assert_eq!(remote.name.as_deref(), Some("settings"));
/// assert_eq!(remote.labels, local.labels);
/// assert_eq!(remote.annotations, None);
/// assert_eq!((remote.namespace, remote.uid), (None, None));
/// ```
pub fn remote_metadata(
    local: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    let annotations = local.annotations.as_ref().map(|annotations| {
        annotations
            .iter()
            .filter(|(key, _)| !NOT_REFLECTED_ANNOTATIONS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: local.name.clone(),
        labels: local.labels.clone().filter(|labels| !labels.is_empty()),
        annotations: annotations.filter(|annotations| !annotations.is_empty()),
        ..Default::default()
    }
}
