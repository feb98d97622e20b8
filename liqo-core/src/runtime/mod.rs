//! Helpers for controllers and long-running tasks.
//!
//! - [`KeyedBackoff`] and [`BackoffConfig`]: per-object exponential requeue delays for a
//!   controller's error policy, reset on success.
//! - [`shutdown_signal`] and [`Shutdown`]: SIGINT/SIGTERM handling and a cloneable shutdown
//!   token to stop controllers, servers and background tasks together.
//! - [`set_condition`]: maintain `metav1.Condition`s in a status.
//! - [`kube_config`] and [`kube_client`]: the client of a binary's `--kubeconfig` flag.

mod backoff;
mod client;
mod conditions;
mod shutdown;
mod watch;

pub use backoff::{BackoffConfig, KeyedBackoff};
pub use client::{kube_client, kube_config};
pub use conditions::{is_condition_true, set_condition};
pub use shutdown::{Shutdown, shutdown_signal};
pub use watch::{is_expired, retrying, watch_backoff};
