//! The crate's error type.

/// Errors returned by liqo-reflect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{context}: {}", liqo_core::error::KubeErrorExt::describe(source))]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// A remote object with the twin's name exists and was not created by this reflection.
    #[error(
        "{kind} {namespace}/{name} already exists in the remote cluster and is not managed by liqo; \
         rename one of them or delete the remote object"
    )]
    NotManaged {
        /// Kind of the object.
        kind: String,
        /// Remote namespace.
        namespace: String,
        /// Remote name.
        name: String,
    },
    /// An object could not be converted to or from JSON.
    #[error("serializing {what}: {source}")]
    Serialization {
        /// What was being serialized.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration or input is unusable (what to fix is in the message).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A tenant asked for something the provider's policy does not allow (what and why in
    /// the message).
    #[error("refused: {0}")]
    Refused(String),
    /// The webhook server could not start (certificate or listener).
    #[error("webhook server: {0}")]
    Webhook(String),
    /// Error from a third-party [`Reflector`](crate::Reflector) implementation.
    #[error("reflector error: {0}")]
    Backend(#[source] liqo_core::BoxError),
}

/// Result type of liqo-reflect.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Kube { context, source }
    }

    /// A short CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "APIError",
            Self::NotManaged { .. } => "NotManaged",
            Self::Serialization { .. } => "SerializationError",
            Self::InvalidConfig(_) => "InvalidConfig",
            Self::Webhook(_) => "WebhookError",
            Self::Refused(_) => "Refused",
            Self::Backend(_) => "BackendError",
        }
    }
}
