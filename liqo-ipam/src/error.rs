//! The crate's error type.

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Error from a third-party implementation of this crate's trait.
    #[error("backend error: {0}")]
    Backend(#[source] liqo_core::BoxError),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
