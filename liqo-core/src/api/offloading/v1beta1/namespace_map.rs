//! The `NamespaceMap` kind: the namespaces offloaded to one provider and their remote names.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Namespaces the consumer wants in one provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "NamespaceMap",
    plural = "namespacemaps",
    shortname = "nm",
    shortname = "nsmap",
    category = "liqo",
    namespaced,
    status = "NamespaceMapStatus",
    derive = "PartialEq",
    doc = "The namespaces offloaded to one provider (named after its cluster ID); written by the consumer, replicated to the provider, which creates the namespaces and reports back in the status.",
    printcolumn = r#"{"name":"Local","type":"string","jsonPath":".metadata.labels.liqo\\.io/replication"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceMapSpec {
    /// Remote namespace name wanted for each local namespace. Always serialized, also when
    /// empty: a replica applied with an empty `spec` would be refused (null spec).
    #[serde(default)]
    pub desired_mapping: BTreeMap<String, String>,
}

/// State of a remote namespace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum MappingPhase {
    /// The remote namespace exists.
    Accepted,
    /// Creating the remote namespace keeps failing.
    CreationLoopBackOff,
    /// The remote namespace is being deleted.
    Terminating,
}

/// The namespace created in the provider for one local namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteNamespaceStatus {
    /// Name of the remote namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_namespace: Option<String>,
    /// State of the remote namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<MappingPhase>,
}

/// Namespaces that actually exist in the provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceMapStatus {
    /// Remote namespace of each local namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub current_mapping: BTreeMap<String, RemoteNamespaceStatus>,
}
