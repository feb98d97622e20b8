//! The `Quota` kind: how many resources a consumer's offloaded pods may use in a provider.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Resource limits of one consumer user.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "Quota",
    plural = "quotas",
    shortname = "qt",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "The resources the ShadowPods of one consumer identity may use in the provider, enforced when ShadowPods are admitted.",
    printcolumn = r#"{"name":"Enforcement","type":"string","jsonPath":".spec.limitsEnforcement"}"#,
    printcolumn = r#"{"name":"Cordoned","type":"boolean","jsonPath":".spec.cordoned"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"User","type":"string","priority":1,"jsonPath":".spec.user"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSpec {
    /// User the quota applies to (the common name of the ResourceSlice certificate).
    #[schemars(length(min = 1))]
    pub user: String,
    /// How strictly the limits are enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits_enforcement: Option<LimitsEnforcement>,
    /// Maximum quantities, by resource name.
    pub resources: BTreeMap<String, Quantity>,
    /// Whether the user is cordoned (no new ShadowPods are admitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cordoned: Option<bool>,
}

/// How the limits of a Quota are enforced.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum LimitsEnforcement {
    /// Pods must set limits equal to their requests, and the limits count against the quota.
    Hard,
    /// Requests count against the quota and limits may exceed them.
    Soft,
    /// The quota is not enforced.
    None,
}
