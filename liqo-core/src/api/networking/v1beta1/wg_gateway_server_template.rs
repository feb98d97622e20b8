//! The `WgGatewayServerTemplate` kind: the template a GatewayServer is rendered from.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectKind;

/// Template of the object created for a GatewayServer.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayServerTemplate",
    plural = "wggatewayservertemplates",
    shortname = "wggst",
    shortname = "wgst",
    category = "liqo",
    namespaced,
    derive = "PartialEq",
    label("networking.liqo.io/gatewaytemplate", "true"),
    doc = "A template for the object (a WgGatewayServer by default) created for each GatewayServer that references it; string values may contain Go-template placeholders filled in from the GatewayServer."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayServerTemplateSpec {
    /// API version and kind of the object the template renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_kind: Option<ObjectKind>,
    /// The object to render, as free-form JSON (its `spec`, plus any other top-level field).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "crate::api::schema::preserve_unknown_object")]
    pub template: serde_json::Value,
}
