//! The [`PeeringNegotiator`] seam: every decision of the peering handshake, for both sides.
//!
//! The flow (consumer C, provider P) is made of Kubernetes resources exchanged by `liqoctl`
//! and reconciled by controllers on each side; the controllers and `liqoctl` call a
//! negotiator for everything that is a decision or needs a secret:
//!
//! | step | side | method |
//! |---|---|---|
//! | nonce Secret `liqo-nonce` gets its nonce | P | [`create_nonce`](PeeringNegotiator::create_nonce) |
//! | signed-nonce Secret gets its signature | C | [`sign_nonce`](PeeringNegotiator::sign_nonce) |
//! | `Tenant <C>` is built | C | [`build_tenant`](PeeringNegotiator::build_tenant) |
//! | Tenant verified, control-plane certificate issued | P | [`issue_identity`](PeeringNegotiator::issue_identity) |
//! | `Identity controlplane-<P>` is built | C | [`build_identity`](PeeringNegotiator::build_identity) |
//! | `ResourceSlice` is completed (consumer id, CSR) | C | [`request_slice`](PeeringNegotiator::request_slice) |
//! | slice authenticated and resources granted or denied | P | [`grant_slice`](PeeringNegotiator::grant_slice) |
//! | certificate re-issued before expiry | P | [`renew`](PeeringNegotiator::renew) |
//!
//! [`DefaultNegotiator`] is upstream Liqo's flow. A third party swaps it (for org-specific
//! admission, quotas or billing) by implementing the trait, usually delegating to the default:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use liqo_auth::negotiator::{
//!     PeeringNegotiator, SliceCapacity, SliceGrant, TenantRequest, RenewRequest,
//! };
//! use liqo_auth::{Nonce, Signature, Result, Error};
//! use liqo_core::api::authentication::v1beta1::{AuthParams, Identity, ResourceSlice, Tenant};
//! use liqo_core::ids::ClusterId;
//!
//! /// Admits only consumers whose id starts with `acme-`, and never grants more than 2 CPUs;
//! /// everything else is the wrapped negotiator's.
//! struct AcmeOnly(Arc<dyn PeeringNegotiator>);
//!
//! #[async_trait]
//! impl PeeringNegotiator for AcmeOnly {
//!     fn cluster_id(&self) -> &ClusterId { self.0.cluster_id() }
//!     async fn create_nonce(&self, consumer: &ClusterId) -> Result<Nonce> {
//!         if !consumer.as_str().starts_with("acme-") {
//!             return Err(Error::Refused(format!("{consumer} is not an acme cluster")));
//!         }
//!         self.0.create_nonce(consumer).await
//!     }
//!     async fn sign_nonce(&self, provider: &ClusterId, nonce: &Nonce) -> Result<Signature> {
//!         self.0.sign_nonce(provider, nonce).await
//!     }
//!     async fn build_tenant(&self, request: TenantRequest) -> Result<Tenant> {
//!         self.0.build_tenant(request).await
//!     }
//!     async fn issue_identity(&self, tenant: &Tenant, nonce: &Nonce) -> Result<AuthParams> {
//!         self.0.issue_identity(tenant, nonce).await
//!     }
//!     async fn build_identity(
//!         &self, provider: &ClusterId, params: AuthParams, remote_tenant_namespace: &str,
//!     ) -> Result<Identity> {
//!         self.0.build_identity(provider, params, remote_tenant_namespace).await
//!     }
//!     async fn request_slice(&self, slice: ResourceSlice) -> Result<ResourceSlice> {
//!         self.0.request_slice(slice).await
//!     }
//!     async fn grant_slice(&self, slice: &ResourceSlice, tenant: &Tenant, capacity: &SliceCapacity) -> Result<SliceGrant> {
//!         let cpu = slice.spec.resources.get("cpu").map(|q| q.0.as_str()).unwrap_or("0");
//!         if liqo_auth::grant::parse_quantity(cpu)? > 2000 {
//!             return Ok(SliceGrant::denied_resources("acme slices are limited to 2 CPUs"));
//!         }
//!         self.0.grant_slice(slice, tenant, capacity).await
//!     }
//!     async fn renew(&self, request: RenewRequest) -> Result<AuthParams> {
//!         self.0.renew(request).await
//!     }
//! }
//!
//! // `Arc<dyn PeeringNegotiator>` is what controllers take.
//! fn wrap(default: Arc<dyn PeeringNegotiator>) -> Arc<dyn PeeringNegotiator> {
//!     Arc::new(AcmeOnly(default))
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use liqo_core::api::authentication::v1beta1::{
    AuthParams, Identity, IdentityType, RESOURCE_SLICE_CLASS_DEFAULT, ResourceSlice, Tenant,
};
use liqo_core::ids::ClusterId;

use crate::crypto::{self, ClusterKeys, Nonce, PublicKey, Signature};
use crate::error::{Error, Result};
use crate::grant::{self, Milli, SharingPolicy};
use crate::signer::KubernetesSigner;
use crate::{forge, names};

/// What a consumer puts in its Tenant.
#[derive(Debug, Clone)]
pub struct TenantRequest {
    /// The provider the Tenant is for.
    pub provider: ClusterId,
    /// The provider's nonce, signed by [`PeeringNegotiator::sign_nonce`].
    pub signature: Signature,
    /// Optional proxy through which the provider's API server is reached.
    pub proxy_url: Option<String>,
}

/// What the provider has to share, for [`PeeringNegotiator::grant_slice`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceCapacity {
    /// Allocatable resources of the provider's physical nodes, summed (thousandths).
    pub allocatable: BTreeMap<String, Milli>,
    /// Resources already granted to other slices (thousandths).
    pub granted_to_others: BTreeMap<String, Milli>,
}

/// The provider's answer to a ResourceSlice: authentication and resources, each accepted or
/// denied with a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceGrant {
    /// Credentials of the slice's identity, or why they are refused. `None`: left to another
    /// controller (non-default class).
    pub authentication: Option<std::result::Result<AuthParams, String>>,
    /// Granted resources, or why they are refused. `None`: left to another controller.
    pub resources: Option<std::result::Result<BTreeMap<String, Quantity>, String>>,
}

impl SliceGrant {
    /// A grant that refuses the resources with `message` (and leaves authentication undecided).
    pub fn denied_resources(message: impl Into<String>) -> Self {
        Self {
            authentication: None,
            resources: Some(Err(message.into())),
        }
    }
}

/// A request for a fresh certificate (from a `Renew` or a Tenant nearing expiry).
#[derive(Debug, Clone)]
pub struct RenewRequest {
    /// The consumer.
    pub consumer: ClusterId,
    /// The kind of identity.
    pub identity_type: IdentityType,
    /// The PEM CSR, made with the consumer's key.
    pub csr: Vec<u8>,
    /// The consumer's public key, as recorded by the provider (the Tenant's).
    pub public_key: Vec<u8>,
    /// For ResourceSlice identities, the slice name.
    pub resource_slice: Option<String>,
}

/// Every decision of the peering handshake. Object safe: controllers take
/// `Arc<dyn PeeringNegotiator>`. See the [module documentation](self) for the flow and a
/// complete implementation.
#[async_trait]
pub trait PeeringNegotiator: Send + Sync {
    /// The local cluster id.
    fn cluster_id(&self) -> &ClusterId;

    /// Provider: creates the nonce for a consumer (or refuses the consumer).
    async fn create_nonce(&self, consumer: &ClusterId) -> Result<Nonce>;

    /// Consumer: signs the nonce issued by a provider.
    async fn sign_nonce(&self, provider: &ClusterId, nonce: &Nonce) -> Result<Signature>;

    /// Consumer: builds `Tenant <self>` for the provider (public key, CSR, signature).
    async fn build_tenant(&self, request: TenantRequest) -> Result<Tenant>;

    /// Provider: verifies a Tenant against the nonce it issued (signature, CSR subject and key)
    /// and issues the consumer's control-plane credentials.
    async fn issue_identity(&self, tenant: &Tenant, nonce: &Nonce) -> Result<AuthParams>;

    /// Consumer: builds `Identity controlplane-<provider>` from the provider's answer.
    async fn build_identity(
        &self,
        provider: &ClusterId,
        params: AuthParams,
        remote_tenant_namespace: &str,
    ) -> Result<Identity>;

    /// Consumer: completes a ResourceSlice (consumer id, CSR of its identity).
    async fn request_slice(&self, slice: ResourceSlice) -> Result<ResourceSlice>;

    /// Provider: authenticates a (replicated) ResourceSlice of the consumer `tenant` (its
    /// accepted Tenant, bound to the slice's namespace) and grants or denies its resources.
    /// The slice's CSR must be for the key the Tenant registered: a consumer signs slices
    /// only with its own cluster key.
    async fn grant_slice(
        &self,
        slice: &ResourceSlice,
        tenant: &Tenant,
        capacity: &SliceCapacity,
    ) -> Result<SliceGrant>;

    /// Provider: issues a fresh certificate for an identity of a consumer.
    async fn renew(&self, request: RenewRequest) -> Result<AuthParams>;
}

/// Configuration of the [`DefaultNegotiator`].
#[derive(Debug, Clone)]
pub struct NegotiatorConfig {
    /// The API server URL identities point at (what peers use to reach this cluster).
    pub api_server_url: String,
    /// The CA (PEM) peers use to trust the API server.
    pub api_server_ca: Vec<u8>,
    /// What the default ResourceSlice class grants.
    pub sharing: SharingPolicy,
    /// Whether the default ResourceSlice class is handled (upstream
    /// `--default-resource-slice-class-enabled`).
    pub default_class_enabled: bool,
}

/// Upstream Liqo's handshake: Ed25519 cluster keys, nonce signature, CSRs signed by the
/// Kubernetes CSR API (`kubernetes.io/kube-apiserver-client`), default ResourceSlice class.
pub struct DefaultNegotiator {
    cluster_id: ClusterId,
    keys: Arc<ClusterKeys>,
    signer: KubernetesSigner,
    config: NegotiatorConfig,
}

impl std::fmt::Debug for DefaultNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultNegotiator")
            .field("cluster_id", &self.cluster_id)
            .field("config", &self.config.api_server_url)
            .finish_non_exhaustive()
    }
}

impl DefaultNegotiator {
    /// A negotiator for the cluster `cluster_id` with its `keys`, signing with `signer`.
    pub fn new(
        cluster_id: ClusterId,
        keys: Arc<ClusterKeys>,
        signer: KubernetesSigner,
        config: NegotiatorConfig,
    ) -> Self {
        Self {
            cluster_id,
            keys,
            signer,
            config,
        }
    }

    /// The cluster's keys.
    pub fn keys(&self) -> &ClusterKeys {
        &self.keys
    }

    fn auth_params(&self, cert: Vec<u8>, proxy_url: Option<String>) -> AuthParams {
        AuthParams {
            ca: Some(ByteString(self.config.api_server_ca.clone())),
            signed_crt: Some(ByteString(cert)),
            api_server: Some(self.config.api_server_url.clone()),
            proxy_url,
            aws_config: None,
        }
    }
}

fn bytes_of(field: &Option<ByteString>, object: &str, what: &str) -> Result<Vec<u8>> {
    field
        .as_ref()
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Incomplete {
            object: object.to_owned(),
            reason: format!("no {what}"),
        })
}

#[async_trait]
impl PeeringNegotiator for DefaultNegotiator {
    fn cluster_id(&self) -> &ClusterId {
        &self.cluster_id
    }

    async fn create_nonce(&self, _consumer: &ClusterId) -> Result<Nonce> {
        Nonce::generate()
    }

    async fn sign_nonce(&self, _provider: &ClusterId, nonce: &Nonce) -> Result<Signature> {
        Ok(crypto::sign_nonce(&self.keys, nonce))
    }

    async fn build_tenant(&self, request: TenantRequest) -> Result<Tenant> {
        let csr = crypto::create_csr(&self.keys, &self.cluster_id)?;
        Ok(forge::tenant(
            &self.cluster_id,
            &self.keys.public_key_pem(),
            &csr,
            &request.signature,
            request.proxy_url,
        ))
    }

    async fn issue_identity(&self, tenant: &Tenant, nonce: &Nonce) -> Result<AuthParams> {
        let object = format!(
            "Tenant {}",
            tenant.metadata.name.as_deref().unwrap_or_default()
        );
        let consumer = tenant
            .spec
            .cluster_id
            .as_deref()
            .ok_or_else(|| Error::Incomplete {
                object: object.clone(),
                reason: "no spec.clusterID".into(),
            })
            .and_then(|id| {
                ClusterId::new(id).map_err(|e| Error::Incomplete {
                    object: object.clone(),
                    reason: e.to_string(),
                })
            })?;
        if consumer == self.cluster_id {
            return Err(Error::Refused(format!(
                "the consumer has the same cluster id as this cluster ({consumer}): cluster ids \
                 must be unique; reinstall one of them with another --cluster-id"
            )));
        }
        let public_key = PublicKey::parse(bytes_of(
            &tenant.spec.public_key,
            &object,
            "spec.publicKey",
        )?)?;
        let signature =
            Signature::from_bytes(bytes_of(&tenant.spec.signature, &object, "spec.signature")?);
        crypto::verify_nonce(&public_key, nonce, &signature)?;
        let csr = bytes_of(&tenant.spec.csr, &object, "spec.csr")?;
        crypto::check_csr(&csr, &consumer, &public_key)?;
        let cert = self.signer.sign(consumer.as_str(), &csr).await?;
        Ok(self.auth_params(cert, tenant.spec.proxy_url.clone()))
    }

    async fn build_identity(
        &self,
        provider: &ClusterId,
        params: AuthParams,
        remote_tenant_namespace: &str,
    ) -> Result<Identity> {
        Ok(forge::identity(
            &names::control_plane_identity(provider),
            IdentityType::ControlPlane,
            provider,
            params,
            remote_tenant_namespace,
        ))
    }

    async fn request_slice(&self, mut slice: ResourceSlice) -> Result<ResourceSlice> {
        let name = slice.metadata.name.clone().unwrap_or_default();
        slice.spec.consumer_cluster_id = Some(self.cluster_id.to_string());
        let cn = names::resource_slice_common_name(&name, self.cluster_id.as_str());
        let csr = crypto::create_csr_with_subject(&self.keys, &cn, self.cluster_id.as_str())?;
        slice.spec.csr = Some(ByteString(csr.into_bytes()));
        Ok(slice)
    }

    async fn grant_slice(
        &self,
        slice: &ResourceSlice,
        tenant: &Tenant,
        capacity: &SliceCapacity,
    ) -> Result<SliceGrant> {
        let class = slice
            .spec
            .class
            .as_deref()
            .unwrap_or(RESOURCE_SLICE_CLASS_DEFAULT);
        if class != RESOURCE_SLICE_CLASS_DEFAULT || !self.config.default_class_enabled {
            return Ok(SliceGrant {
                authentication: None,
                resources: None,
            });
        }
        let name = slice.metadata.name.clone().unwrap_or_default();
        let tenant_key = tenant
            .spec
            .public_key
            .as_ref()
            .filter(|k| !k.0.is_empty())
            .map(|k| PublicKey::parse(&k.0))
            .transpose()?;
        let authentication = match (slice.spec.consumer_cluster_id.as_deref(), &slice.spec.csr) {
            (Some(consumer), _) if tenant.spec.cluster_id.as_deref() != Some(consumer) => {
                Some(Err(format!(
                    "the slice is for consumer {consumer} but was sent by {}",
                    tenant.spec.cluster_id.as_deref().unwrap_or("<unknown>")
                )))
            }
            (_, _) if tenant_key.is_none() => Some(Err(
                "the consumer's Tenant registered no public key: authenticate again".to_owned(),
            )),
            (Some(consumer), Some(csr)) if !csr.0.is_empty() => {
                let cn = names::resource_slice_common_name(&name, consumer);
                match crypto::check_csr_subject(&csr.0, &cn, consumer, tenant_key.as_ref()) {
                    Ok(()) => Some(Ok(
                        self.auth_params(self.signer.sign(&cn, &csr.0).await?, None)
                    )),
                    Err(e) => Some(Err(e.to_string())),
                }
            }
            _ => None, // the consumer has not completed the slice yet
        };
        let resources = Some(grant::decide_grant(
            &self.config.sharing,
            &slice.spec.resources,
            &capacity.allocatable,
            &capacity.granted_to_others,
        ));
        Ok(SliceGrant {
            authentication,
            resources,
        })
    }

    async fn renew(&self, request: RenewRequest) -> Result<AuthParams> {
        let public_key = PublicKey::parse(&request.public_key)?;
        let (cn, org) = match (&request.identity_type, &request.resource_slice) {
            (IdentityType::ResourceSlice, Some(slice)) => (
                names::resource_slice_common_name(slice, request.consumer.as_str()),
                request.consumer.to_string(),
            ),
            _ => (
                request.consumer.to_string(),
                crypto::CONTROL_PLANE_ORGANIZATION.to_owned(),
            ),
        };
        crypto::check_csr_subject(&request.csr, &cn, &org, Some(&public_key))?;
        let cert = self.signer.sign(&cn, &request.csr).await?;
        Ok(self.auth_params(cert, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqo_core::api::authentication::v1beta1::ResourceSliceSpec;

    /// A negotiator whose signer points at nothing: every refusal must happen before signing.
    fn negotiator(id: &str) -> DefaultNegotiator {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        DefaultNegotiator::new(
            ClusterId::new(id).unwrap(),
            Arc::new(ClusterKeys::generate().unwrap()),
            KubernetesSigner::new(client),
            NegotiatorConfig {
                api_server_url: "https://127.0.0.1:6443".into(),
                api_server_ca: b"ca".to_vec(),
                sharing: SharingPolicy::default(),
                default_class_enabled: true,
            },
        )
    }

    async fn tenant_for(
        consumer: &DefaultNegotiator,
        provider: &ClusterId,
        nonce: &Nonce,
    ) -> Tenant {
        let signature = consumer.sign_nonce(provider, nonce).await.unwrap();
        consumer
            .build_tenant(TenantRequest {
                provider: provider.clone(),
                signature,
                proxy_url: None,
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn tampered_signatures_and_collisions_are_refused_before_signing() {
        let (rome, milan) = (negotiator("rome"), negotiator("milan"));
        let nonce = milan.create_nonce(rome.cluster_id()).await.unwrap();
        let tenant = tenant_for(&rome, milan.cluster_id(), &nonce).await;
        assert_eq!(
            tenant.metadata.namespace.as_deref(),
            Some("liqo-tenant-rome")
        );

        // Another nonce than the one issued: the signature does not verify.
        let other = Nonce::generate().unwrap();
        let err = milan.issue_identity(&tenant, &other).await.unwrap_err();
        assert!(matches!(err, Error::InvalidNonceSignature { .. }), "{err}");

        // A flipped bit in the signature.
        let mut tampered = tenant.clone();
        if let Some(sig) = tampered.spec.signature.as_mut() {
            sig.0[0] ^= 1;
        }
        let err = milan.issue_identity(&tampered, &nonce).await.unwrap_err();
        assert!(matches!(err, Error::InvalidNonceSignature { .. }), "{err}");

        // A CSR for another cluster.
        let mut wrong_csr = tenant.clone();
        let keys = ClusterKeys::generate().unwrap();
        let csr = crypto::create_csr(&keys, &ClusterId::new("paris").unwrap()).unwrap();
        wrong_csr.spec.csr = Some(ByteString(csr.into_bytes()));
        assert!(milan.issue_identity(&wrong_csr, &nonce).await.is_err());

        // The consumer claims the provider's own id.
        let twin = negotiator("milan");
        let t = tenant_for(&twin, milan.cluster_id(), &nonce).await;
        let err = milan.issue_identity(&t, &nonce).await.unwrap_err();
        assert!(err.to_string().contains("same cluster id"), "{err}");

        // A Tenant without its signature.
        let mut unsigned = tenant;
        unsigned.spec.signature = None;
        let err = milan.issue_identity(&unsigned, &nonce).await.unwrap_err();
        assert!(matches!(err, Error::Incomplete { .. }), "{err}");
    }

    #[tokio::test]
    async fn slices_are_completed_and_non_default_classes_left_alone() {
        let rome = negotiator("rome");
        let milan = ClusterId::new("milan").unwrap();
        let slice = forge::resource_slice("milan", &milan, BTreeMap::new(), None);
        let slice = rome.request_slice(slice).await.unwrap();
        assert_eq!(slice.spec.consumer_cluster_id.as_deref(), Some("rome"));
        let csr = slice.spec.csr.clone().unwrap();
        let cn = names::resource_slice_common_name("milan", "rome");
        crypto::check_csr_subject(&csr.0, &cn, "rome", Some(&rome.keys().public_key())).unwrap();

        let provider = negotiator("milan");
        let mut gpu = ResourceSlice::new(
            "gpu",
            ResourceSliceSpec {
                class: Some("gpu".into()),
                ..Default::default()
            },
        );
        gpu.metadata.namespace = Some("liqo-tenant-rome".into());
        let grant = provider
            .grant_slice(
                &gpu,
                &Tenant::new("rome", Default::default()),
                &SliceCapacity::default(),
            )
            .await
            .unwrap();
        assert_eq!(grant.authentication, None);
        assert_eq!(grant.resources, None);
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: Arc<dyn PeeringNegotiator>) {}
        let _ = takes;
    }
}
