//! The crate's error type, and helpers to classify errors from the Kubernetes API.

/// A boxed error from a third-party implementation, as carried by the `Backend` variant of the
/// error enums of the liqo-rs crates.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors returned by liqo-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is not a valid cluster identifier.
    #[error("invalid cluster id {id:?}: {reason}")]
    InvalidClusterId {
        /// The rejected value.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A string is not a valid Kubernetes namespace name.
    #[error("invalid namespace name {name:?}: {reason}")]
    InvalidNamespace {
        /// The rejected value.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A string is not a valid label key or value.
    #[error("{reason}")]
    InvalidLabel {
        /// The rejected key or value.
        text: String,
        /// What is wrong, in a sentence.
        reason: String,
    },
    /// A string is not a Kubernetes quantity.
    #[error("invalid quantity \"{text}\": expected a Kubernetes quantity such as 500m, 2, 1.5Gi")]
    InvalidQuantity {
        /// The rejected value.
        text: String,
    },
    /// No usable Kubernetes client configuration.
    #[error("{what}: {source}")]
    Kubeconfig {
        /// What was being done, with the file involved and what to do.
        what: String,
        /// The underlying error.
        source: BoxError,
    },
}

/// Result type of liqo-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Classifies [`kube::Error`]s by the API status they carry, for controllers that treat
/// "not found", "conflict" or "already exists" as expected outcomes rather than failures.
///
/// Sealed: implemented for [`kube::Error`] only.
///
/// ```
/// use kube::core::Status;
/// use liqo_core::error::KubeErrorExt;
///
/// let err = kube::Error::Api(Status::failure("cm \"x\" not found", "NotFound").with_code(404).boxed());
/// assert!(err.is_not_found());
/// assert!(!err.is_conflict());
/// ```
pub trait KubeErrorExt: sealed::Sealed {
    /// The API answered 404 Not Found.
    fn is_not_found(&self) -> bool;
    /// The API answered 409 Conflict because of a stale `resourceVersion` or a server-side-apply
    /// field conflict.
    fn is_conflict(&self) -> bool;
    /// The API answered 409 AlreadyExists to a create.
    fn is_already_exists(&self) -> bool;
    /// The API answered 403 Forbidden.
    fn is_forbidden(&self) -> bool;
    /// The API answered 422 Invalid (the object failed validation).
    fn is_invalid(&self) -> bool;
    /// The error for people: the API server's message as it wrote it (for example an
    /// admission webhook's denial) rather than kube's `ApiError: ... (Status { ... })`
    /// rendering; other errors as they display.
    ///
    /// ```
    /// use kube::core::Status;
    /// use liqo_core::error::KubeErrorExt;
    ///
    /// let err = kube::Error::Api(Status::failure("namespaces \"x\" not found", "NotFound").with_code(404).boxed());
    /// assert_eq!(err.describe(), "namespaces \"x\" not found");
    /// ```
    fn describe(&self) -> String;
}

impl KubeErrorExt for kube::Error {
    fn is_not_found(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_not_found())
    }

    fn is_conflict(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_conflict())
    }

    fn is_already_exists(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_already_exists())
    }

    fn is_forbidden(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_forbidden())
    }

    fn is_invalid(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_invalid())
    }

    fn describe(&self) -> String {
        match self {
            kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
            kube::Error::Api(status) => {
                format!("the API server answered {} {}", status.code, status.reason)
            }
            other => other.to_string(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for kube::Error {}
}
