//! The `WgGatewayClientTemplate` kind: the template a GatewayClient is rendered from.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectKind;

/// Template of the object created for a GatewayClient.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayClientTemplate",
    plural = "wggatewayclienttemplates",
    shortname = "wggct",
    shortname = "wgct",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    label("networking.liqo.io/gatewaytemplate", "true"),
    doc = "A template for the object (a WgGatewayClient by default) created for each GatewayClient that references it; string values may contain Go-template placeholders filled in from the GatewayClient."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayClientTemplateSpec {
    /// API version and kind of the object the template renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_kind: Option<ObjectKind>,
    /// The object to render, as free-form JSON (its `spec`, plus any other top-level field).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "crate::api::schema::preserve_unknown_object")]
    pub template: serde_json::Value,
}
