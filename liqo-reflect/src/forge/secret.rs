//! The Secret forge: remote Secrets are verbatim copies, except that service-account token
//! Secrets become opaque ones (the remote cluster has no such service account to bind them to).

use k8s_openapi::api::core::v1::Secret;

use super::{Forge, ForgeContext, remote_metadata};

/// Type of the legacy Secrets holding a token of a service account
/// (`kubernetes.io/service-account-token`).
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// Type of Secrets holding arbitrary data (`Opaque`).
pub const OPAQUE_TYPE: &str = "Opaque";

/// Annotation with which Kubernetes binds a service-account token Secret to its service account
/// (`kubernetes.io/service-account.name`). On the remote twin of such a Secret the same key is
/// also set as a label, so the tokens of a service account can be selected remotely.
pub const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";

/// Forge of Secrets.
///
/// The remote Secret has the local name, labels and annotations (minus
/// [`NOT_REFLECTED_ANNOTATIONS`](super::NOT_REFLECTED_ANNOTATIONS)), and the local `data`,
/// `type` and `immutable` verbatim (`stringData` is write-only and never read back, so there is
/// nothing to copy). A Secret of type [`SERVICE_ACCOUNT_TOKEN_TYPE`] cannot be created where its
/// service account does not exist, so its twin is of type [`OPAQUE_TYPE`], keeps the data and
/// carries the label [`SERVICE_ACCOUNT_NAME_KEY`] with the service account's name.
///
/// ```
/// use k8s_openapi::api::core::v1::Secret;
/// use liqo_reflect::forge::{Forge, ForgeContext, SecretForge};
///
/// let ctx = ForgeContext {
///     local_cluster: "rome".parse()?,
///     remote_cluster: "milan".parse()?,
///     local_namespace: "demo".into(),
///     remote_namespace: "demo-rome".into(),
/// };
/// let mut local = Secret::default();
/// local.metadata.name = Some("builder-token".into());
/// local.metadata.annotations =
///     Some([("kubernetes.io/service-account.name".into(), "builder".into())].into());
/// local.type_ = Some("kubernetes.io/service-account-token".into());
///
/// let remote = SecretForge.remote(&local, &ctx).expect("secrets are always reflected");
/// assert_eq!(remote.type_.as_deref(), Some("Opaque"));
/// assert_eq!(
///     remote.metadata.labels,
///     Some([("kubernetes.io/service-account.name".into(), "builder".into())].into()),
/// );
/// # Ok::<(), liqo_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretForge;

impl Forge<Secret> for SecretForge {
    /// Token Secrets written by the ServiceAccount reflector are not this forge's twins.
    fn manages(&self, remote: &Secret) -> bool {
        !remote
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(liqo_core::labels::reflection::SERVICE_ACCOUNT_NAME))
    }

    fn remote(&self, local: &Secret, _ctx: &ForgeContext) -> Option<Secret> {
        let mut remote = Secret {
            metadata: remote_metadata(&local.metadata),
            data: local.data.clone(),
            type_: local.type_.clone(),
            immutable: local.immutable,
            string_data: None,
        };

        if local.type_.as_deref() == Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
            remote.type_ = Some(OPAQUE_TYPE.to_owned());
            let service_account = local
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(SERVICE_ACCOUNT_NAME_KEY))
                .cloned()
                .unwrap_or_default();
            remote
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(SERVICE_ACCOUNT_NAME_KEY.to_owned(), service_account);
        }

        Some(remote)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn ctx() -> ForgeContext {
        ForgeContext {
            local_cluster: "rome".parse().unwrap(),
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

    fn bytes(pairs: &[(&str, &[u8])]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
            .collect()
    }

    fn local_secret() -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db-credentials".into()),
                namespace: Some("shop".into()),
                uid: Some("7d0e".into()),
                resource_version: Some("812".into()),
                labels: Some(map(&[("app", "db")])),
                annotations: Some(map(&[
                    ("example.com/rotated", "2024-05-01"),
                    ("liqo.io/skip-reflection", "false"),
                    ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(bytes(&[("username", b"admin"), ("password", b"s3cr3t")])),
            string_data: Some(map(&[("ignored", "write-only")])),
            type_: Some("kubernetes.io/basic-auth".into()),
            immutable: Some(true),
        }
    }

    #[test]
    fn copies_data_type_and_metadata() {
        let local = local_secret();
        let remote = SecretForge.remote(&local, &ctx()).unwrap();

        assert_eq!(remote.metadata.name.as_deref(), Some("db-credentials"));
        assert_eq!(remote.metadata.labels, Some(map(&[("app", "db")])));
        assert_eq!(
            remote.metadata.annotations,
            Some(map(&[("example.com/rotated", "2024-05-01")]))
        );
        assert_eq!(remote.metadata.namespace, None);
        assert_eq!(remote.metadata.uid, None);
        assert_eq!(remote.metadata.resource_version, None);
        assert_eq!(remote.data, local.data);
        assert_eq!(remote.string_data, None);
        assert_eq!(remote.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(remote.immutable, Some(true));
    }

    #[test]
    fn names_are_not_mapped() {
        assert_eq!(
            SecretForge.remote_name("db-credentials", &ctx()),
            "db-credentials"
        );
        assert_eq!(
            SecretForge.local_name("db-credentials", &ctx()),
            "db-credentials"
        );
    }

    #[test]
    fn untyped_secret_stays_untyped() {
        let mut local = local_secret();
        local.type_ = None;
        local.immutable = None;
        let remote = SecretForge.remote(&local, &ctx()).unwrap();
        assert_eq!(remote.type_, None);
        assert_eq!(remote.immutable, None);
    }

    #[test]
    fn service_account_token_becomes_opaque_with_the_account_label() {
        let local = Secret {
            metadata: ObjectMeta {
                name: Some("builder-token-x7k2p".into()),
                namespace: Some("shop".into()),
                labels: Some(map(&[("app", "ci")])),
                annotations: Some(map(&[
                    ("kubernetes.io/service-account.name", "builder"),
                    ("kubernetes.io/service-account.uid", "5c1a"),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(bytes(&[
                ("token", b"eyJhbGciOi"),
                ("ca.crt", b"-----BEGIN CERTIFICATE-----"),
                ("namespace", b"shop"),
            ])),
            type_: Some("kubernetes.io/service-account-token".into()),
            ..Secret::default()
        };
        let remote = SecretForge.remote(&local, &ctx()).unwrap();

        assert_eq!(remote.type_.as_deref(), Some("Opaque"));
        assert_eq!(remote.data, local.data);
        assert_eq!(
            remote.metadata.labels,
            Some(map(&[
                ("app", "ci"),
                ("kubernetes.io/service-account.name", "builder")
            ]))
        );
        assert_eq!(remote.metadata.annotations, local.metadata.annotations);
    }

    #[test]
    fn service_account_token_without_labels_gets_the_account_label() {
        let mut local = Secret::default();
        local.metadata.name = Some("orphan-token".into());
        local.type_ = Some(SERVICE_ACCOUNT_TOKEN_TYPE.into());
        let remote = SecretForge.remote(&local, &ctx()).unwrap();

        assert_eq!(remote.type_.as_deref(), Some(OPAQUE_TYPE));
        // Without the binding annotation the label is still set, empty, as upstream does.
        assert_eq!(
            remote.metadata.labels,
            Some(map(&[("kubernetes.io/service-account.name", "")]))
        );
    }
}
