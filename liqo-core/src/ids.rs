//! Validated identifiers shared by every liqo-rs crate.
//!
//! Liqo names clusters and namespaces with plain strings; here they are newtypes that can only
//! hold valid values, so a malformed identifier is rejected once, where it enters the system
//! (a flag, a label, a custom resource), instead of failing later inside an API call.
//!
//! - [`ClusterId`]: the identifier of a cluster taking part in a peering.
//! - [`NamespacePair`]: a local namespace and the remote namespace it is mapped to.
//! - [`validate_namespace_name`]: the rule applied to Kubernetes namespace names.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Prefix of the default name of a tenant namespace: the tenant namespace of cluster `foo` is
/// `liqo-tenant-foo` unless it was created in advance with another name.
///
/// ```
/// use liqo_core::ids::{ClusterId, TENANT_NAMESPACE_PREFIX};
///
/// let id: ClusterId = "foo".parse()?;
/// assert_eq!(id.tenant_namespace(), format!("{TENANT_NAMESPACE_PREFIX}foo"));
/// # Ok::<(), liqo_core::Error>(())
/// ```
pub const TENANT_NAMESPACE_PREFIX: &str = "liqo-tenant-";

/// Maximum length of an RFC 1123 label, and so of cluster ids and namespace names.
///
/// ```
/// assert_eq!(liqo_core::ids::MAX_LABEL_LEN, 63);
/// ```
pub const MAX_LABEL_LEN: usize = 63;

/// Regular expression (as used in CRD schemas) matching an RFC 1123 label, length aside.
///
/// ```
/// assert!(liqo_core::ids::DNS1123_LABEL_PATTERN.starts_with('^'));
/// ```
pub const DNS1123_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Whether `value` is an RFC 1123 label: 1 to 63 characters, lowercase ASCII letters, digits
/// and `-`, starting and ending with a letter or a digit (a namespace name, a part of a DNS
/// subdomain such as a label key prefix).
///
/// ```
/// assert!(liqo_core::ids::is_dns1123_label("liqo-demo"));
/// assert!(!liqo_core::ids::is_dns1123_label("Liqo"));
/// ```
pub fn is_dns1123_label(value: &str) -> bool {
    check_dns1123_label(value).is_ok()
}

/// Checks `value` against the RFC 1123 label rule. On failure, returns why.
fn check_dns1123_label(value: &str) -> std::result::Result<(), &'static str> {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return Err("must not be empty");
    };
    if bytes.len() > MAX_LABEL_LEN {
        return Err("must be at most 63 characters long");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err("must contain only lowercase alphanumeric characters or '-'");
    }
    if *first == b'-' {
        return Err("must start with a lowercase alphanumeric character");
    }
    if *last == b'-' {
        return Err("must end with a lowercase alphanumeric character");
    }
    Ok(())
}

/// Checks that `name` is a valid Kubernetes namespace name (an RFC 1123 label: at most 63
/// lowercase alphanumeric characters or `-`, starting and ending with an alphanumeric character).
///
/// # Errors
///
/// [`Error::InvalidNamespace`] saying why the name was rejected.
///
/// ```
/// use liqo_core::ids::validate_namespace_name;
///
/// assert!(validate_namespace_name("liqo-tenant-foo").is_ok());
/// assert!(validate_namespace_name("Default").is_err());
/// assert!(validate_namespace_name("my.namespace").is_err());
/// ```
pub fn validate_namespace_name(name: &str) -> Result<()> {
    check_dns1123_label(name).map_err(|reason| Error::InvalidNamespace {
        name: name.to_owned(),
        reason,
    })
}

/// The identifier of a cluster, as carried by ForeignCluster `spec.clusterID`, the
/// `liqo.io/remote-cluster-id` label and the names of per-peer resources.
///
/// Upstream Liqo requires cluster ids to be RFC 1123 labels: 1 to 63 lowercase alphanumeric
/// characters or `-`, starting and ending with an alphanumeric character. Every way of building
/// a `ClusterId` (including deserialization) enforces that rule, so a `ClusterId` is always safe
/// to use as a label value or as part of an object name.
///
/// ```
/// use liqo_core::ids::ClusterId;
///
/// let id: ClusterId = "milan-1".parse()?;
/// assert_eq!(id.as_str(), "milan-1");
/// assert_eq!(id.to_string(), "milan-1");
/// assert!("Milan_1".parse::<ClusterId>().is_err());
///
/// // Serde validates too.
/// let parsed: ClusterId = serde_json::from_str("\"rome\"")?;
/// assert_eq!(parsed, "rome");
/// assert!(serde_json::from_str::<ClusterId>("\"-rome\"").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ClusterId(String);

impl ClusterId {
    /// Maximum length of a cluster id (the length limit of an RFC 1123 label).
    pub const MAX_LEN: usize = MAX_LABEL_LEN;

    /// Validates `id` and wraps it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidClusterId`] if `id` is not an RFC 1123 label.
    ///
    /// ```
    /// use liqo_core::ids::ClusterId;
    ///
    /// let id = ClusterId::new("cluster-a")?;
    /// assert_eq!(id, "cluster-a");
    /// assert!(ClusterId::new("").is_err());
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        match check_dns1123_label(&id) {
            Ok(()) => Ok(Self(id)),
            Err(reason) => Err(Error::InvalidClusterId { id, reason }),
        }
    }

    /// The id as a string slice.
    ///
    /// ```
    /// use liqo_core::ids::ClusterId;
    ///
    /// let id = ClusterId::new("cluster-a")?;
    /// assert_eq!(id.as_str(), "cluster-a");
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the id into its `String`.
    ///
    /// ```
    /// use liqo_core::ids::ClusterId;
    ///
    /// let id = ClusterId::new("cluster-a")?;
    /// assert_eq!(id.into_string(), String::from("cluster-a"));
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn into_string(self) -> String {
        self.0
    }

    /// The default name of the tenant namespace that holds the resources of the peering with this
    /// cluster: `liqo-tenant-<id>`, as upstream Liqo names it.
    ///
    /// A tenant namespace may also have been created in advance under another name; the
    /// authoritative way to find it is by label, see
    /// [`labels::tenant_namespace_selector`](crate::labels::tenant_namespace_selector).
    /// Since the prefix takes 12 characters, the default name of a cluster id longer than 51
    /// characters exceeds the namespace name limit and the API server rejects it; such clusters
    /// need a pre-created tenant namespace, like upstream.
    ///
    /// ```
    /// use liqo_core::ids::ClusterId;
    ///
    /// let id = ClusterId::new("cluster-a")?;
    /// assert_eq!(id.tenant_namespace(), "liqo-tenant-cluster-a");
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn tenant_namespace(&self) -> String {
        format!("{TENANT_NAMESPACE_PREFIX}{}", self.0)
    }

    /// Recovers the cluster id from a tenant namespace name built by
    /// [`tenant_namespace`](Self::tenant_namespace). Returns `None` if `namespace` does not have
    /// the default shape.
    ///
    /// This only inverts the naming convention: a tenant namespace with a custom name is
    /// recognised by its `liqo.io/remote-cluster-id` label instead.
    ///
    /// ```
    /// use liqo_core::ids::ClusterId;
    ///
    /// let id = ClusterId::from_tenant_namespace("liqo-tenant-cluster-a");
    /// assert_eq!(id.as_ref().map(ClusterId::as_str), Some("cluster-a"));
    /// assert_eq!(ClusterId::from_tenant_namespace("default"), None);
    /// assert_eq!(ClusterId::from_tenant_namespace("liqo-tenant-"), None);
    /// ```
    pub fn from_tenant_namespace(namespace: &str) -> Option<Self> {
        namespace
            .strip_prefix(TENANT_NAMESPACE_PREFIX)
            .and_then(|id| Self::new(id).ok())
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClusterId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for ClusterId {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl TryFrom<&str> for ClusterId {
    type Error = Error;

    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl From<ClusterId> for String {
    fn from(id: ClusterId) -> Self {
        id.0
    }
}

impl AsRef<str> for ClusterId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ClusterId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ClusterId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClusterId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<ClusterId> for str {
    fn eq(&self, other: &ClusterId) -> bool {
        self == other.0
    }
}

impl PartialEq<ClusterId> for &str {
    fn eq(&self, other: &ClusterId) -> bool {
        *self == other.0
    }
}

impl Serialize for ClusterId {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The schema of a cluster id in CRDs: upstream's RFC 1123 pattern plus the 63-character limit,
/// so that the API server never stores a value this type would refuse to deserialize.
impl schemars::JsonSchema for ClusterId {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ClusterId")
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DNS1123_LABEL_PATTERN,
            "maxLength": MAX_LABEL_LEN,
        })
    }
}

/// A local namespace and the namespace it is mapped to in a remote cluster, the unit of work of
/// namespace offloading and of resource reflection.
///
/// Both names are validated as Kubernetes namespace names (see [`validate_namespace_name`]).
/// It displays as `local->remote` and (de)serializes as `{"local": ..., "remote": ...}`.
///
/// ```
/// use liqo_core::ids::NamespacePair;
///
/// let pair = NamespacePair::new("shop", "shop-milan")?;
/// assert_eq!(pair.local(), "shop");
/// assert_eq!(pair.remote(), "shop-milan");
/// assert_eq!(pair.to_string(), "shop->shop-milan");
/// assert!(NamespacePair::new("shop", "Shop").is_err());
/// # Ok::<(), liqo_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawNamespacePair")]
pub struct NamespacePair {
    local: String,
    remote: String,
}

impl NamespacePair {
    /// Validates both namespace names and pairs them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNamespace`] for the first name that is not a valid namespace name.
    ///
    /// ```
    /// use liqo_core::ids::NamespacePair;
    ///
    /// let pair = NamespacePair::new("default", "default-milan")?;
    /// assert_eq!(pair.remote(), "default-milan");
    /// assert!(NamespacePair::new("", "x").is_err());
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn new(local: impl Into<String>, remote: impl Into<String>) -> Result<Self> {
        let (local, remote) = (local.into(), remote.into());
        validate_namespace_name(&local)?;
        validate_namespace_name(&remote)?;
        Ok(Self { local, remote })
    }

    /// The namespace in the local cluster.
    ///
    /// ```
    /// use liqo_core::ids::NamespacePair;
    ///
    /// assert_eq!(NamespacePair::new("a", "b")?.local(), "a");
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The namespace in the remote cluster.
    ///
    /// ```
    /// use liqo_core::ids::NamespacePair;
    ///
    /// assert_eq!(NamespacePair::new("a", "b")?.remote(), "b");
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Whether both sides have the same name (the `EnforceSameName` mapping strategy).
    ///
    /// ```
    /// use liqo_core::ids::NamespacePair;
    ///
    /// assert!(NamespacePair::new("a", "a")?.is_same_name());
    /// assert!(!NamespacePair::new("a", "b")?.is_same_name());
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn is_same_name(&self) -> bool {
        self.local == self.remote
    }

    /// Splits the pair into `(local, remote)`.
    ///
    /// ```
    /// use liqo_core::ids::NamespacePair;
    ///
    /// let (local, remote) = NamespacePair::new("a", "b")?.into_parts();
    /// assert_eq!((local.as_str(), remote.as_str()), ("a", "b"));
    /// # Ok::<(), liqo_core::Error>(())
    /// ```
    pub fn into_parts(self) -> (String, String) {
        (self.local, self.remote)
    }
}

impl fmt::Display for NamespacePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.local, self.remote)
    }
}

/// Unvalidated wire form of [`NamespacePair`].
#[derive(Deserialize)]
struct RawNamespacePair {
    local: String,
    remote: String,
}

impl TryFrom<RawNamespacePair> for NamespacePair {
    type Error = Error;

    fn try_from(raw: RawNamespacePair) -> Result<Self> {
        Self::new(raw.local, raw.remote)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn reason_of(id: &str) -> &'static str {
        match ClusterId::new(id) {
            Err(Error::InvalidClusterId { reason, .. }) => reason,
            other => panic!("expected an invalid cluster id error for {id:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_valid_cluster_ids() {
        let max = "a".repeat(63);
        for id in [
            "a",
            "0",
            "cluster-1",
            "a-b-c",
            "a--b",
            "123",
            "5f3b5abd-cccb-4f75-931b-d6b1ca95fa7d",
            max.as_str(),
        ] {
            let parsed = ClusterId::new(id).unwrap();
            assert_eq!(parsed.as_str(), id);
            assert_eq!(id.parse::<ClusterId>().unwrap(), parsed);
            assert_eq!(ClusterId::try_from(id.to_owned()).unwrap(), parsed);
        }
    }

    #[test]
    fn rejects_invalid_cluster_ids() {
        assert_eq!(reason_of(""), "must not be empty");
        assert_eq!(
            reason_of(&"a".repeat(64)),
            "must be at most 63 characters long"
        );
        let charset = "must contain only lowercase alphanumeric characters or '-'";
        for id in [
            "Cluster",
            "cLuster",
            "my_cluster",
            "my.cluster",
            "my cluster",
            "clüster",
            "a/b",
            " a",
        ] {
            assert_eq!(reason_of(id), charset, "{id:?}");
        }
        assert_eq!(
            reason_of("-a"),
            "must start with a lowercase alphanumeric character"
        );
        assert_eq!(
            reason_of("-"),
            "must start with a lowercase alphanumeric character"
        );
        assert_eq!(
            reason_of("a-"),
            "must end with a lowercase alphanumeric character"
        );
    }

    #[test]
    fn error_message_names_value_and_reason() {
        let err = ClusterId::new("A").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cluster id \"A\": must contain only lowercase alphanumeric characters or '-'"
        );
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = ClusterId::new("cluster-a").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"cluster-a\"");
        let back: ClusterId = serde_json::from_str("\"cluster-a\"").unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_str::<ClusterId>("\"Cluster_A\"").unwrap_err();
        assert!(err.to_string().contains("invalid cluster id"), "{err}");
        assert!(serde_json::from_str::<ClusterId>("42").is_err());
    }

    #[test]
    fn borrows_as_str_in_maps() {
        let mut map = HashMap::new();
        map.insert(ClusterId::new("a").unwrap(), 1);
        assert_eq!(map.get("a"), Some(&1));
        assert!("a" == ClusterId::new("a").unwrap());
    }

    #[test]
    fn tenant_namespace_round_trip() {
        let id = ClusterId::new("cluster-a").unwrap();
        assert_eq!(id.tenant_namespace(), "liqo-tenant-cluster-a");
        assert_eq!(
            ClusterId::from_tenant_namespace(&id.tenant_namespace()),
            Some(id)
        );
        assert_eq!(ClusterId::from_tenant_namespace("liqo-tenant-Bad"), None);
        assert_eq!(ClusterId::from_tenant_namespace("liqo"), None);
    }

    #[test]
    fn schema_matches_validation() {
        let schema = schemars::schema_for!(ClusterId);
        let value = serde_json::to_value(&schema).unwrap();
        assert_eq!(value["type"], "string");
        assert_eq!(value["pattern"], DNS1123_LABEL_PATTERN);
        assert_eq!(value["maxLength"], 63);
    }

    #[test]
    fn namespace_pair_validates_both_sides() {
        let pair = NamespacePair::new("a", "b").unwrap();
        assert_eq!(pair.to_string(), "a->b");
        match NamespacePair::new("ok", "Not-Ok") {
            Err(Error::InvalidNamespace { name, .. }) => assert_eq!(name, "Not-Ok"),
            other => panic!("unexpected {other:?}"),
        }
        match NamespacePair::new("n".repeat(64), "ok") {
            Err(Error::InvalidNamespace { reason, .. }) => {
                assert_eq!(reason, "must be at most 63 characters long");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(NamespacePair::new("a-", "b").is_err());
        assert!(NamespacePair::new("a", "b_c").is_err());
    }

    #[test]
    fn namespace_pair_serde() {
        let pair = NamespacePair::new("a", "b").unwrap();
        let json = serde_json::to_string(&pair).unwrap();
        assert_eq!(json, r#"{"local":"a","remote":"b"}"#);
        assert_eq!(serde_json::from_str::<NamespacePair>(&json).unwrap(), pair);
        assert!(serde_json::from_str::<NamespacePair>(r#"{"local":"a","remote":"B"}"#).is_err());
        assert!(serde_json::from_str::<NamespacePair>(r#"{"local":"a"}"#).is_err());
    }
}
