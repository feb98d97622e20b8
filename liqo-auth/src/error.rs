//! The crate's error type.
//!
//! Every variant says what was wrong and with which input, so that a refused peering step can be
//! reported to the user (as an event or a condition) without further context.

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Error from a third-party implementation of this crate's trait.
    #[error("backend error: {0}")]
    Backend(#[source] liqo_core::BoxError),

    /// A PEM document is malformed: no block with the expected label, missing end line, bad
    /// base64 body or unexpected trailing data.
    #[error("malformed PEM {what}: {reason}")]
    MalformedPem {
        /// What the PEM was supposed to hold (e.g. `"public key"`).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A base64 text is malformed.
    #[error("malformed base64 {what}: {source}")]
    MalformedBase64 {
        /// What the text was supposed to hold (e.g. `"nonce"`).
        what: &'static str,
        /// The decoding error.
        #[source]
        source: base64::DecodeError,
    },

    /// A DER structure (key, public key info, certificate signing request) cannot be parsed.
    #[error("malformed {what}: {reason}")]
    MalformedDer {
        /// What the structure was supposed to be.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A nonce is empty (upstream Liqo refuses empty nonces as well).
    #[error("the nonce is empty")]
    EmptyNonce,

    /// A key uses an algorithm this operation does not support.
    #[error("unsupported key algorithm {algorithm} for {operation}")]
    UnsupportedKeyAlgorithm {
        /// The algorithm (name or OID) of the key.
        algorithm: String,
        /// The operation that was attempted.
        operation: &'static str,
    },

    /// The signature of the nonce does not verify with the public key: the nonce or the signature
    /// was tampered with, or they were produced with another key.
    #[error(
        "the nonce signature does not verify with the given {algorithm} public key (tampered \
         nonce or signature, or signed by another key)"
    )]
    InvalidNonceSignature {
        /// The algorithm of the public key the signature was checked against.
        algorithm: &'static str,
    },

    /// The self-signature of a certificate signing request is invalid: the request was
    /// tampered with after being signed.
    #[error("the signature of the certificate signing request is invalid: {reason}")]
    InvalidCsrSignature {
        /// Why the verification failed.
        reason: String,
    },

    /// Two keys that must be the same are not.
    #[error("key mismatch: {what}")]
    KeyMismatch {
        /// Which keys differ (e.g. the CSR's public key and the Tenant's public key).
        what: &'static str,
    },

    /// The common name (CN) of a certificate signing request is not the expected one.
    #[error(
        "wrong common name in the certificate signing request: expected {expected:?}, found {found:?}"
    )]
    WrongCommonName {
        /// The common name the request must carry.
        expected: String,
        /// The common names it carries.
        found: Vec<String>,
    },

    /// The organization (O) of a certificate signing request is not the expected one.
    #[error(
        "wrong organization in the certificate signing request: expected exactly {expected:?}, found {found:?}"
    )]
    WrongOrganization {
        /// The organization the request must carry, alone.
        expected: String,
        /// The organizations it carries.
        found: Vec<String>,
    },

    /// A cryptographic primitive failed (random generator or key generation).
    #[error("cryptographic failure while {operation}")]
    Crypto {
        /// What was being done.
        operation: &'static str,
    },

    /// A certificate signing request could not be built.
    #[error("cannot build the certificate signing request: {0}")]
    CsrCreation(#[source] rcgen::Error),

    /// A call to the Kubernetes API failed.
    #[error("{context}: {}", liqo_core::error::KubeErrorExt::describe(source))]
    Kube {
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A resource lacks a field the operation needs (e.g. a Tenant without a CSR).
    #[error("{object} is incomplete: {reason}")]
    Incomplete {
        /// The object (kind/name).
        object: String,
        /// What is missing.
        reason: String,
    },

    /// A peering request was refused by the policy (e.g. more resources than shared).
    #[error("refused: {0}")]
    Refused(String),

    /// A certificate could not be obtained in time or was denied by the signer.
    #[error("certificate for {name}: {reason}")]
    Certificate {
        /// Name of the Kubernetes CertificateSigningRequest.
        name: String,
        /// What happened.
        reason: String,
    },

    /// A kubeconfig could not be built or read.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),

    /// A Kubernetes quantity could not be parsed.
    #[error("invalid quantity {0:?} for {1}")]
    Quantity(String, String),

    /// An item of the cluster labels (`key=value,...`) is malformed.
    #[error("invalid cluster label {item:?}: {reason}")]
    InvalidClusterLabel {
        /// The offending `key=value` item.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps a Kubernetes client error with what was being done.
    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Kube { context, source }
    }

    /// Whether the error is a Kubernetes `404 Not Found`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(s), .. } if s.code == 404)
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
