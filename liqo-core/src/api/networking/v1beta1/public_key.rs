//! The `PublicKey` kind: the tunnel public key of a peer's gateway.

use k8s_openapi::ByteString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "PublicKey",
    plural = "publickeies",
    shortname = "pk",
    shortname = "pkies",
    shortname = "pkey",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    doc = "The public key of a peer's gateway, needed by tunnel technologies such as WireGuard."
)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeySpec {
    /// The public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::bytes")]
    pub public_key: Option<ByteString>,
}
