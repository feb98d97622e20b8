//! Runs the authentication controllers of a provider with your own admission policy: a
//! [`PeeringNegotiator`] that only admits allow-listed consumers and caps every slice at 2
//! CPUs, delegating everything else to upstream Liqo's default flow.
//!
//! ```sh
//! # a cluster from `make playground` (stop its liqo-controller-manager first), or any cluster
//! KUBECONFIG=target/testenv/milan/kubeconfig CLUSTER_ID=milan ALLOWED=rome \
//!   cargo run -p liqo-examples --example custom_negotiator
//! # then, from the consumer: liqoctl peer --remote-kubeconfig ... --skip-networking
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use liqo_auth::negotiator::{RenewRequest, SliceCapacity, SliceGrant, TenantRequest};
use liqo_auth::signer::KubernetesSigner;
use liqo_auth::{
    DefaultNegotiator, Error, NegotiatorConfig, Nonce, PeeringNegotiator, Result, Signature,
};
use liqo_core::api::authentication::v1beta1::{AuthParams, Identity, ResourceSlice, Tenant};
use liqo_core::ids::ClusterId;

/// Admits only `allowed` consumers; grants at most 2 CPUs per slice.
struct AllowList {
    allowed: Vec<String>,
    inner: Arc<dyn PeeringNegotiator>,
}

#[async_trait]
impl PeeringNegotiator for AllowList {
    fn cluster_id(&self) -> &ClusterId {
        self.inner.cluster_id()
    }
    async fn create_nonce(&self, consumer: &ClusterId) -> Result<Nonce> {
        if !self.allowed.iter().any(|a| a == consumer.as_str()) {
            return Err(Error::Refused(format!(
                "{consumer} is not in the allow list"
            )));
        }
        self.inner.create_nonce(consumer).await
    }
    async fn sign_nonce(&self, provider: &ClusterId, nonce: &Nonce) -> Result<Signature> {
        self.inner.sign_nonce(provider, nonce).await
    }
    async fn build_tenant(&self, request: TenantRequest) -> Result<Tenant> {
        self.inner.build_tenant(request).await
    }
    async fn issue_identity(&self, tenant: &Tenant, nonce: &Nonce) -> Result<AuthParams> {
        let id = tenant.spec.cluster_id.clone().unwrap_or_default();
        if !self.allowed.contains(&id) {
            return Err(Error::Refused(format!("{id} is not in the allow list")));
        }
        self.inner.issue_identity(tenant, nonce).await
    }
    async fn build_identity(
        &self,
        provider: &ClusterId,
        params: AuthParams,
        remote_tenant_namespace: &str,
    ) -> Result<Identity> {
        self.inner
            .build_identity(provider, params, remote_tenant_namespace)
            .await
    }
    async fn request_slice(&self, slice: ResourceSlice) -> Result<ResourceSlice> {
        self.inner.request_slice(slice).await
    }
    async fn grant_slice(
        &self,
        slice: &ResourceSlice,
        tenant: &Tenant,
        capacity: &SliceCapacity,
    ) -> Result<SliceGrant> {
        let cpu = slice
            .spec
            .resources
            .get("cpu")
            .map_or("4", |q| q.0.as_str());
        if liqo_auth::grant::parse_quantity(cpu)? > 2000 {
            let mut grant = self.inner.grant_slice(slice, tenant, capacity).await?;
            grant.resources = Some(Err("this provider grants at most 2 CPUs per slice".into()));
            return Ok(grant);
        }
        self.inner.grant_slice(slice, tenant, capacity).await
    }
    async fn renew(&self, request: RenewRequest) -> Result<AuthParams> {
        self.inner.renew(request).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let id = ClusterId::new(std::env::var("CLUSTER_ID").unwrap_or_else(|_| "milan".into()))?;
    let allowed = std::env::var("ALLOWED")
        .unwrap_or_default()
        .split(',')
        .map(str::to_owned)
        .collect();
    let keys =
        Arc::new(liqo_auth::bootstrap::ensure_cluster(&client, "liqo", &id, "example").await?);
    let signer = KubernetesSigner::new(client.clone());
    let config = NegotiatorConfig {
        // What consumers use to reach this cluster's API server.
        api_server_url: std::env::var("API_SERVER_URL")
            .unwrap_or_else(|_| "https://127.0.0.1:6443".into()),
        api_server_ca: signer.cluster_ca("liqo").await?,
        sharing: Default::default(),
        default_class_enabled: true,
    };
    let default = Arc::new(DefaultNegotiator::new(
        id.clone(),
        keys.clone(),
        signer,
        config,
    ));
    let negotiator = Arc::new(AllowList {
        allowed,
        inner: default,
    });
    println!("authentication controllers of {id} running with an allow list; Ctrl-C stops");
    liqo_auth::controller::run(
        client,
        negotiator,
        liqo_auth::controller::Config::new(id, keys),
        liqo_core::runtime::shutdown_signal(),
    )
    .await?;
    Ok(())
}
