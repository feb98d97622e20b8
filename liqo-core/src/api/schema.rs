//! JSON-schema helpers used by the API types through `#[schemars(schema_with = ...)]`.
//!
//! They cover the few places where the schema derived from the Rust type is not the one the
//! Kubernetes API server should enforce (base64 byte strings, cluster identifiers, free-form
//! objects, unsigned integers without a non-standard `format`).

use schemars::{Schema, SchemaGenerator, json_schema};

/// Regular expression a cluster identifier must match (an RFC 1123 label).
pub(crate) const CLUSTER_ID_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A cluster identifier: a string matching [`CLUSTER_ID_PATTERN`].
pub(crate) fn cluster_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": CLUSTER_ID_PATTERN,
    })
}

/// A cluster identifier that cannot change once set.
pub(crate) fn immutable_cluster_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": CLUSTER_ID_PATTERN,
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "clusterID cannot be changed once set"}
        ],
    })
}

/// Binary data, carried as a base64 string (Go `[]byte`).
pub(crate) fn bytes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "byte",
    })
}

/// An arbitrary JSON object whose content the API server must keep as is.
pub(crate) fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A non-negative integer that fits in 32 bits, without the `uint32` format (which the API
/// server does not know).
pub(crate) fn uint32(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "maximum": u32::MAX,
    })
}

/// `true`, as a serde default.
pub(crate) fn default_true() -> bool {
    true
}

/// Schema of a `LocalObjectReference` whose `name` may be omitted (it defaults to the empty
/// string, as the Rust type does when deserializing), instead of the stricter one k8s-openapi
/// provides.
fn lenient_local_object_reference() -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "default": "",
                "description": "Name of the referenced object, in the same namespace.",
            },
        },
        "x-kubernetes-map-type": "atomic",
    })
}

/// A reference to an object in the same namespace (`{name: ...}`).
pub(crate) fn local_object_reference(_: &mut SchemaGenerator) -> Schema {
    lenient_local_object_reference()
}

/// A list of references to objects in the same namespace.
pub(crate) fn local_object_references(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": lenient_local_object_reference().to_value(),
    })
}
