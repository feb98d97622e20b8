//! Helpers for controllers and long-running tasks.
//!
//! - [`KeyedBackoff`] and [`BackoffConfig`]: per-object exponential requeue delays for a
//!   controller's error policy, reset on success.
//! - [`shutdown_signal`] and [`Shutdown`]: SIGINT/SIGTERM handling and a cloneable shutdown
//!   token to stop controllers, servers and background tasks together.
//! - [`set_condition`]: maintain `metav1.Condition`s in a status.

mod backoff;
mod conditions;
mod shutdown;

pub use backoff::{BackoffConfig, KeyedBackoff};
pub use conditions::{is_condition_true, set_condition};
pub use shutdown::{Shutdown, shutdown_signal};
