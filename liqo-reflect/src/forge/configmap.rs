//! The ConfigMap forge: remote ConfigMaps are verbatim copies, except for the root CA bundle,
//! which is renamed so that it does not clash with the remote cluster's own.

use k8s_openapi::api::core::v1::ConfigMap;
use liqo_core::ids::ClusterId;

use super::{Forge, ForgeContext, remote_metadata};

/// Name of the ConfigMap Kubernetes publishes in every namespace with the cluster's root CA
/// bundle. Both clusters have one in each namespace, so the local one is reflected under the
/// name given by [`remote_root_ca_name`].
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// How many leading characters of the local cluster id suffix the remote name of
/// [`ROOT_CA_CONFIG_MAP`].
const ROOT_CA_SUFFIX_LEN: usize = 5;

/// The name of the remote twin of the local [`ROOT_CA_CONFIG_MAP`] reflected from
/// `local_cluster`: `kube-root-ca.crt.<suffix>`, where the suffix is the first five characters
/// of the cluster id (the whole id when shorter), followed by an `a` when it would otherwise
/// end with a `-` (an object name must end with an alphanumeric character).
///
/// ```
/// use liqo_core::ids::ClusterId;
/// use liqo_reflect::forge::configmap::remote_root_ca_name;
///
/// let rome: ClusterId = "rome-cluster".parse()?;
/// assert_eq!(remote_root_ca_name(&rome), "kube-root-ca.crt.rome-a");
/// let milan: ClusterId = "milan".parse()?;
/// assert_eq!(remote_root_ca_name(&milan), "kube-root-ca.crt.milan");
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub fn remote_root_ca_name(local_cluster: &ClusterId) -> String {
    // Cluster ids are RFC 1123 labels: ASCII only, so slicing by characters is slicing by bytes.
    let suffix: String = local_cluster
        .as_str()
        .chars()
        .take(ROOT_CA_SUFFIX_LEN)
        .collect();
    let mut name = format!("{ROOT_CA_CONFIG_MAP}.{suffix}");
    if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        name.push('a');
    }
    name
}

/// Forge of ConfigMaps.
///
/// The remote ConfigMap has the local name, labels and annotations (minus
/// [`NOT_REFLECTED_ANNOTATIONS`](super::NOT_REFLECTED_ANNOTATIONS)), and the local `data`,
/// `binaryData` and `immutable` verbatim. The local [`ROOT_CA_CONFIG_MAP`] is reflected as
/// [`remote_root_ca_name`], and [`Forge::local_name`] maps that name back.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use liqo_reflect::forge::{ConfigMapForge, Forge, ForgeContext};
///
/// let ctx = ForgeContext {
///     local_cluster: "rome".parse()?,
///     remote_cluster: "milan".parse()?,
///     local_namespace: "demo".into(),
///     remote_namespace: "demo-rome".into(),
/// };
/// let mut local = ConfigMap::default();
/// local.metadata.name = Some("kube-root-ca.crt".into());
/// let remote = ConfigMapForge.remote(&local, &ctx).expect("configmaps are always reflected");
/// assert_eq!(remote.metadata.name.as_deref(), Some("kube-root-ca.crt.rome"));
/// assert_eq!(ConfigMapForge.local_name("kube-root-ca.crt.rome", &ctx), "kube-root-ca.crt");
/// # Ok::<(), liqo_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigMapForge;

impl Forge<ConfigMap> for ConfigMapForge {
    fn remote(&self, local: &ConfigMap, ctx: &ForgeContext) -> Option<ConfigMap> {
        let mut metadata = remote_metadata(&local.metadata);
        metadata.name = metadata.name.map(|name| self.remote_name(&name, ctx));
        Some(ConfigMap {
            metadata,
            data: local.data.clone(),
            binary_data: local.binary_data.clone(),
            immutable: local.immutable,
        })
    }

    fn remote_name(&self, local_name: &str, ctx: &ForgeContext) -> String {
        if local_name == ROOT_CA_CONFIG_MAP {
            remote_root_ca_name(&ctx.local_cluster)
        } else {
            local_name.to_owned()
        }
    }

    fn local_name(&self, remote_name: &str, ctx: &ForgeContext) -> String {
        if remote_name == remote_root_ca_name(&ctx.local_cluster) {
            ROOT_CA_CONFIG_MAP.to_owned()
        } else {
            remote_name.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    use super::*;

    fn ctx(local_cluster: &str) -> ForgeContext {
        ForgeContext {
            local_cluster: local_cluster.parse().unwrap(),
            remote_cluster: "milan".parse().unwrap(),
            local_namespace: "shop".into(),
            remote_namespace: "shop-rome".into(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn local_config_map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                uid: Some("0f3c2a9e-4c55-4a43-9d0e-2f8c3f3d7a11".into()),
                resource_version: Some("4711".into()),
                generation: Some(3),
                creation_timestamp: Some(Time(Default::default())),
                finalizers: Some(vec!["example.com/keep".into()]),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: "web".into(),
                    uid: "9b1d".into(),
                    ..OwnerReference::default()
                }]),
                labels: Some(map(&[("app", "web"), ("tier", "frontend")])),
                annotations: Some(map(&[
                    ("example.com/owner", "team-a"),
                    ("liqo.io/allow-reflection", "true"),
                    ("liqo.io/skip-reflection", "false"),
                    (
                        "kubectl.kubernetes.io/last-applied-configuration",
                        "{\"kind\":\"ConfigMap\"}",
                    ),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(map(&[
                ("app.properties", "color=blue\nsize=3\n"),
                ("mode", "prod"),
            ])),
            binary_data: Some(
                [(
                    "logo.png".to_owned(),
                    ByteString(vec![0x89, b'P', b'N', b'G']),
                )]
                .into(),
            ),
            immutable: Some(true),
        }
    }

    #[test]
    fn copies_content_and_metadata_but_nothing_else() {
        let ctx = ctx("rome");
        let local = local_config_map("settings");
        let remote = ConfigMapForge.remote(&local, &ctx).unwrap();

        assert_eq!(remote.metadata.name.as_deref(), Some("settings"));
        assert_eq!(
            remote.metadata.labels,
            Some(map(&[("app", "web"), ("tier", "frontend")]))
        );
        assert_eq!(
            remote.metadata.annotations,
            Some(map(&[("example.com/owner", "team-a")]))
        );
        assert_eq!(remote.data, local.data);
        assert_eq!(remote.binary_data, local.binary_data);
        assert_eq!(remote.immutable, Some(true));

        // Nothing server-owned or engine-owned is forged.
        assert_eq!(
            remote.metadata,
            ObjectMeta {
                name: Some("settings".into()),
                labels: remote.metadata.labels.clone(),
                annotations: remote.metadata.annotations.clone(),
                ..ObjectMeta::default()
            }
        );
    }

    #[test]
    fn empty_config_map_yields_empty_twin() {
        let ctx = ctx("rome");
        let mut local = ConfigMap::default();
        local.metadata.name = Some("empty".into());
        local.metadata.annotations = Some(map(&[("liqo.io/allow-reflection", "true")]));
        let remote = ConfigMapForge.remote(&local, &ctx).unwrap();

        assert_eq!(remote.metadata.name.as_deref(), Some("empty"));
        assert_eq!(remote.metadata.labels, None);
        assert_eq!(remote.metadata.annotations, None);
        assert_eq!(remote.data, None);
        assert_eq!(remote.binary_data, None);
        assert_eq!(remote.immutable, None);
    }

    #[test]
    fn root_ca_is_renamed_with_the_local_cluster_prefix() {
        let ctx = ctx("rome-cluster-1");
        let remote = ConfigMapForge
            .remote(&local_config_map(ROOT_CA_CONFIG_MAP), &ctx)
            .unwrap();
        assert_eq!(
            remote.metadata.name.as_deref(),
            Some("kube-root-ca.crt.rome-a")
        );
        assert_eq!(remote.data, local_config_map(ROOT_CA_CONFIG_MAP).data);
    }

    #[test]
    fn root_ca_name_maps_both_ways() {
        for (cluster, expected) in [
            ("rome", "kube-root-ca.crt.rome"),
            ("milan", "kube-root-ca.crt.milan"),
            ("naples-1", "kube-root-ca.crt.naple"),
            ("ab-cd-ef", "kube-root-ca.crt.ab-cd"),
            ("abcd-ef", "kube-root-ca.crt.abcd-a"),
            ("x", "kube-root-ca.crt.x"),
        ] {
            let ctx = ctx(cluster);
            assert_eq!(
                ConfigMapForge.remote_name(ROOT_CA_CONFIG_MAP, &ctx),
                expected
            );
            assert_eq!(
                ConfigMapForge.local_name(expected, &ctx),
                ROOT_CA_CONFIG_MAP
            );
        }
    }

    #[test]
    fn other_names_map_to_themselves() {
        let ctx = ctx("rome");
        assert_eq!(ConfigMapForge.remote_name("settings", &ctx), "settings");
        assert_eq!(ConfigMapForge.local_name("settings", &ctx), "settings");
        // The remote cluster's own root CA is not the twin of anything renamed.
        assert_eq!(
            ConfigMapForge.local_name(ROOT_CA_CONFIG_MAP, &ctx),
            ROOT_CA_CONFIG_MAP
        );
        // A root CA reflected from another cluster does not map back to the local root CA.
        assert_eq!(
            ConfigMapForge.local_name("kube-root-ca.crt.milan", &ctx),
            "kube-root-ca.crt.milan"
        );
    }
}
