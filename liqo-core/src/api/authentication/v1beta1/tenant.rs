//! The `Tenant` kind: a consumer cluster, as seen by its provider.

use k8s_openapi::ByteString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthParams;

/// Desired state of a Tenant.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.liqo.io",
    version = "v1beta1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "tn",
    category = "liqo",
    namespaced,
    status = "TenantStatus",
    derive = "PartialEq",
    doc = "A consumer cluster allowed to use the local (provider) cluster; it lives in the tenant namespace of that consumer and is named after its cluster ID.",
    printcolumn = r#"{"name":"Condition","type":"string","jsonPath":".spec.tenantCondition"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Cluster ID of the consumer; it cannot change once set.
    #[serde(rename = "clusterID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::immutable_cluster_id")]
    pub cluster_id: Option<String>,
    /// How ResourceSlices coming from this consumer are authorized.
    #[serde(default)]
    pub authz_policy: AuthzPolicy,
    /// Public key of the consumer, used to verify `signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub public_key: Option<ByteString>,
    /// PEM certificate signing request of the consumer, for its control-plane identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub csr: Option<ByteString>,
    /// The nonce issued by the provider, signed with the consumer's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub signature: Option<ByteString>,
    /// URL of the proxy the consumer goes through to reach the provider, if any.
    #[serde(rename = "proxyURL", skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Whether the consumer may use and negotiate resources.
    #[serde(default)]
    pub tenant_condition: TenantCondition,
}

/// Policy for authorizing the ResourceSlices of a tenant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AuthzPolicy {
    /// A key exchange (the signed nonce) must have happened before any ResourceSlice is accepted.
    #[default]
    KeysExchange,
    /// ResourceSlices are accepted even without a previous key exchange.
    TolerateNoHandshake,
}

/// Administrative state of a tenant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TenantCondition {
    /// The tenant uses its resources and may negotiate new ones.
    #[default]
    Active,
    /// The tenant keeps (cordoned) what it has but cannot negotiate new resources.
    Cordoned,
    /// The tenant can neither use resources nor negotiate new ones.
    Drained,
}

/// Observed state of a Tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// Namespace of the provider dedicated to this consumer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_namespace: Option<String>,
    /// Credentials handed to the consumer for its control-plane identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_params: Option<AuthParams>,
}
