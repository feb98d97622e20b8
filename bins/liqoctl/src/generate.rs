//! `liqoctl generate peering-user`: a least-privilege kubeconfig for the provider, to give to
//! the administrator of a consumer.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{Patch, PostParams};
use liqo_auth::kubeconfig::{KubeconfigParts, render};
use liqo_auth::signer::KubernetesSigner;
use liqo_auth::{ClusterKeys, crypto, forge, names};
use liqo_core::ids::ClusterId;
use liqo_core::labels::{authentication as auth_keys, core as core_keys};

use crate::cluster::Conn;
use crate::peer::{ensure_tenant_namespace, field_manager};

/// The user name of a peering user: `liqo-peer-user-<consumer>-<6 random chars>`.
pub(crate) fn peering_user_name(consumer: &ClusterId) -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 6];
    // The system RNG does not fail on Linux; zeros would still give a valid (if predictable) name.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("liqo-peer-user-{consumer}-{suffix}")
}

/// Creates the user and returns its kubeconfig (YAML).
pub(crate) async fn peering_user(provider: &Conn, consumer: &ClusterId) -> anyhow::Result<String> {
    if consumer == &provider.id {
        anyhow::bail!(
            "--consumer-cluster-id {consumer} is the id of this cluster: give the id of the \
             consumer cluster"
        );
    }
    ensure_tenant_namespace(provider, consumer).await?;
    let user = peering_user_name(consumer);
    let keys = ClusterKeys::generate()?;
    let csr = crypto::create_csr_with_subject(&keys, &user, crypto::CONTROL_PLANE_ORGANIZATION)?;
    let signer = KubernetesSigner::new(provider.client.clone());
    let cert = signer
        .sign(&user, csr.as_bytes())
        .await
        .context("signing the peering user's certificate")?;
    let ca = signer.cluster_ca(&provider.namespace).await?;
    let labels = BTreeMap::from([
        (
            core_keys::REMOTE_CLUSTER_ID.to_owned(),
            consumer.to_string(),
        ),
        (auth_keys::PEERING_USER_NAME.to_owned(), user.clone()),
    ]);
    let tenant_ns = consumer.tenant_namespace();
    // The Secrets the user may read, by name; and the nonce it will sign, created here by the
    // provider's administrator (the user may not create or change Secrets).
    let secrets_role = forge::peering_user_secrets_role(consumer);
    Api::<Role>::namespaced(provider.client.clone(), &tenant_ns)
        .patch(
            names::PEERING_USER_SECRETS_ROLE,
            &field_manager(),
            &Patch::Apply(&secrets_role),
        )
        .await
        .with_context(|| {
            format!(
                "creating Role {} in {tenant_ns}",
                names::PEERING_USER_SECRETS_ROLE
            )
        })?;
    match Api::<Secret>::namespaced(provider.client.clone(), &tenant_ns)
        .create(&PostParams::default(), &forge::nonce_secret(consumer))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("creating Secret {tenant_ns}/{}", names::NONCE_SECRET));
        }
    }
    for (ns, kind, role) in [
        (tenant_ns.as_str(), "Role", names::PEERING_USER_SECRETS_ROLE),
        (
            tenant_ns.as_str(),
            "ClusterRole",
            names::PEERING_USER_TENANT_CLUSTER_ROLE,
        ),
        (
            provider.namespace.as_str(),
            "Role",
            names::PEERING_USER_LIQO_ROLE,
        ),
    ] {
        let name = format!("{role}-{user}");
        let rb = forge::role_binding(&name, ns, kind, role, &user, labels.clone());
        Api::<RoleBinding>::namespaced(provider.client.clone(), ns)
            .patch(&name, &field_manager(), &Patch::Apply(&rb))
            .await
            .with_context(|| format!("binding {role} to {user} in {ns}"))?;
    }
    Ok(render(&KubeconfigParts {
        cluster_name: provider.id.to_string(),
        user,
        server: provider.server.clone(),
        ca_pem: ca,
        cert_pem: cert,
        key_pem: keys.to_pkcs8_pem().into_bytes(),
        proxy_url: None,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_unique_and_valid() {
        let id = ClusterId::new("rome").unwrap();
        let a = peering_user_name(&id);
        assert!(a.starts_with("liqo-peer-user-rome-"));
        assert_eq!(a.len(), "liqo-peer-user-rome-".len() + 6);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_ne!(a, peering_user_name(&id));
    }
}
