//! Shutdown signals for long-running tasks and controllers.
//!
//! - [`shutdown_signal`] resolves when the process receives SIGINT or SIGTERM (Ctrl-C on
//!   platforms without Unix signals).
//! - [`Shutdown`] is a cloneable token: any clone can [`trigger`](Shutdown::trigger) it, every
//!   clone can [`wait`](Shutdown::wait) for it. [`Shutdown::with_signals`] also triggers it on
//!   SIGINT/SIGTERM, so one token drives a whole process.
//!
//! ```
//! use liqo_core::runtime::Shutdown;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let shutdown = Shutdown::new();
//! let worker = tokio::spawn({
//!     let shutdown = shutdown.clone();
//!     async move {
//!         shutdown.wait().await;
//!         "stopped"
//!     }
//! });
//! shutdown.trigger();
//! assert_eq!(worker.await.unwrap(), "stopped");
//! # }
//! ```

use std::future::Future;

use tokio::sync::watch;

/// Resolves when the process receives SIGINT or SIGTERM (on non-Unix platforms, Ctrl-C).
///
/// The signal handlers are installed when the future is first polled. If a handler cannot be
/// installed, the error is logged and the other signal is still awaited; if neither can, the
/// future never resolves (no spurious shutdown). Meant for `Controller::graceful_shutdown_on`,
/// `axum::serve(..).with_graceful_shutdown` or a `tokio::select!` in a binary's `main`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// liqo_core::runtime::shutdown_signal().await;
/// println!("shutting down");
/// # }
/// ```
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};

        async fn recv(kind: SignalKind, name: &'static str) {
            match signal(kind) {
                Ok(mut stream) => {
                    stream.recv().await;
                    tracing::info!(signal = name, "received shutdown signal");
                }
                Err(error) => {
                    tracing::error!(signal = name, %error, "cannot listen for shutdown signal");
                    std::future::pending::<()>().await;
                }
            }
        }

        tokio::select! {
            () = recv(SignalKind::interrupt(), "SIGINT") => {}
            () = recv(SignalKind::terminate(), "SIGTERM") => {}
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!(signal = "ctrl-c", "received shutdown signal"),
            Err(error) => {
                tracing::error!(%error, "cannot listen for ctrl-c");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A cloneable shutdown token.
///
/// All clones share one flag: once any of them is [triggered](Self::trigger), every pending and
/// future [`wait`](Self::wait) resolves and [`is_triggered`](Self::is_triggered) returns `true`.
/// Triggering is idempotent and cannot be undone. Built on [`tokio::sync::watch`], so waiting is
/// cheap and needs no polling.
///
/// ```
/// use liqo_core::runtime::Shutdown;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shutdown = Shutdown::new();
/// let clone = shutdown.clone();
/// assert!(!clone.is_triggered());
/// shutdown.trigger();
/// clone.wait().await; // resolves immediately
/// assert!(clone.is_triggered());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Creates an untriggered token, triggered only by [`trigger`](Self::trigger).
    ///
    /// ```
    /// let shutdown = liqo_core::runtime::Shutdown::new();
    /// assert!(!shutdown.is_triggered());
    /// ```
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }

    /// Creates a token that is also triggered when the process receives SIGINT or SIGTERM (see
    /// [`shutdown_signal`]). The signal listener is a background task that ends when the token
    /// is triggered, whichever way.
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], if called outside a Tokio runtime.
    ///
    /// ```
    /// use liqo_core::runtime::Shutdown;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = Shutdown::with_signals();
    /// // ... hand clones to controllers and servers, then:
    /// shutdown.trigger();
    /// shutdown.wait().await;
    /// # }
    /// ```
    pub fn with_signals() -> Self {
        let shutdown = Self::new();
        let listener = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown_signal() => {
                    listener.trigger();
                }
                () = listener.wait() => {}
            }
        });
        shutdown
    }

    /// Triggers the shutdown. Returns `true` if this call triggered it, `false` if it already was.
    ///
    /// ```
    /// let shutdown = liqo_core::runtime::Shutdown::new();
    /// assert!(shutdown.trigger());
    /// assert!(!shutdown.clone().trigger());
    /// ```
    pub fn trigger(&self) -> bool {
        self.tx
            .send_if_modified(|triggered| !std::mem::replace(triggered, true))
    }

    /// Whether the shutdown has been triggered.
    ///
    /// ```
    /// let shutdown = liqo_core::runtime::Shutdown::new();
    /// shutdown.trigger();
    /// assert!(shutdown.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the shutdown is triggered (immediately if it already is). Cancel-safe.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_core::runtime::Shutdown;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = Shutdown::new();
    /// tokio::select! {
    ///     () = shutdown.wait() => unreachable!("not triggered"),
    ///     () = tokio::task::yield_now() => {}
    /// }
    /// # }
    /// ```
    pub async fn wait(&self) {
        wait_on(self.tx.subscribe()).await;
    }

    /// A `'static` future resolving once the shutdown is triggered, for APIs that take
    /// ownership of a trigger future, such as kube-runtime's
    /// `Controller::graceful_shutdown_on` (which also requires `Send + Sync`).
    ///
    /// Unlike [`wait`](Self::wait), the future can outlive every token; if all tokens are
    /// dropped without a trigger, it resolves as well, since nothing could trigger it any more.
    ///
    /// ```
    /// use liqo_core::runtime::Shutdown;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = Shutdown::new();
    /// let stopped = shutdown.wait_owned();
    /// drop(shutdown.clone());
    /// shutdown.trigger();
    /// stopped.await;
    /// # }
    /// ```
    pub fn wait_owned(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        wait_on(self.tx.subscribe())
    }
}

/// Waits until the watched flag becomes `true`, or until every token is gone (nothing could
/// trigger the shutdown any more, so waiting on would never end).
async fn wait_on(mut rx: watch::Receiver<bool>) {
    loop {
        let triggered = *rx.borrow_and_update();
        if triggered || rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>(_: &T) {}

    #[tokio::test]
    async fn manual_trigger_wakes_all_waiters() {
        let shutdown = Shutdown::new();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let shutdown = shutdown.clone();
                tokio::spawn(async move { shutdown.wait().await })
            })
            .collect();
        let owned = tokio::spawn(shutdown.wait_owned());
        tokio::task::yield_now().await;
        assert!(waiters.iter().all(|w| !w.is_finished()));

        assert!(shutdown.trigger());
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), owned)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn trigger_is_idempotent_and_sticky() {
        let shutdown = Shutdown::default();
        let clone = shutdown.clone();
        assert!(!shutdown.is_triggered());
        assert!(clone.trigger());
        assert!(!shutdown.trigger());
        assert!(shutdown.is_triggered());
        // Waiting after the fact resolves at once, also on new clones.
        shutdown.clone().wait().await;
        shutdown.wait_owned().await;
    }

    #[tokio::test]
    async fn wait_is_pending_until_triggered() {
        let shutdown = Shutdown::new();
        let waited = tokio::time::timeout(Duration::from_millis(20), shutdown.wait()).await;
        assert!(waited.is_err(), "wait resolved without a trigger");
        // A cancelled wait leaves the token usable.
        shutdown.trigger();
        shutdown.wait().await;
    }

    #[tokio::test]
    async fn owned_wait_outlives_tokens_and_is_send_sync() {
        let shutdown = Shutdown::new();
        let fut = shutdown.wait_owned();
        assert_send_sync_static(&fut);
        let trigger = shutdown.clone();
        drop(shutdown);
        let task = tokio::spawn(fut);
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn owned_wait_resolves_if_all_tokens_are_dropped() {
        let shutdown = Shutdown::new();
        let fut = shutdown.wait_owned();
        drop(shutdown);
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn signal_token_can_be_triggered_manually() {
        let shutdown = Shutdown::with_signals();
        assert!(!shutdown.is_triggered());
        assert!(shutdown.trigger());
        shutdown.wait().await;
    }

    #[test]
    fn token_is_send_sync() {
        assert_send_sync_static(&Shutdown::new());
    }
}
