//! Watch streams that reconnect the way client-go's reflectors do.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

use super::{BackoffConfig, KeyedBackoff};

/// Whether a watch error is the API server's 410 Gone / Expired: the resource version the
/// watch resumed from is no longer served (typically after the API server restarted), and
/// the watcher has already switched to a fresh list.
///
/// ```
/// use kube::{core::Status, runtime::watcher};
/// use liqo_core::runtime::is_expired;
///
/// let mut gone = Status::failure("too old resource version: 342 (355)", "Expired");
/// gone.code = 410;
/// assert!(is_expired(&watcher::Error::WatchError(Box::new(gone))));
/// assert!(!is_expired(&watcher::Error::NoResourceVersion));
/// ```
pub fn is_expired(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// The reconnection policy of [`retrying`]: 0.8 s doubling up to 30 s, each delay shortened
/// by up to half at random, history forgotten after two minutes without errors (client-go's
/// reflector and kube's `default_backoff` use the same figures).
pub fn watch_backoff() -> BackoffConfig {
    BackoffConfig::default()
        .initial_delay(Duration::from_millis(800))
        .max_delay(Duration::from_secs(30))
        .factor(2.0)
        .jitter(0.5)
        .idle_expiry(Duration::from_secs(120))
}

/// Adds reconnection delays to a [`watcher`] stream, like kube's `default_backoff` but
/// without waiting after a 410 Gone ([`is_expired`]): the watcher lists again at once, as
/// client-go does. With kube's backoff, every watch of an API server that comes back from a
/// restart first gets a 410 and then sleeps the full delay it reached during the outage
/// (30 s and more) before listing; here it resynchronises on the first attempt.
///
/// Errors are still yielded, so the caller can log them; the delay is taken before the next
/// poll of the watcher. A 410 right after another 410 waits like any other error.
///
/// ```no_run
/// # async fn run(client: kube::Client) {
/// use futures::TryStreamExt;
/// use k8s_openapi::api::core::v1::Pod;
/// use kube::{Api, runtime::{WatchStreamExt, watcher}};
/// use liqo_core::runtime::retrying;
///
/// let pods: Api<Pod> = Api::all(client);
/// let stream = retrying(watcher(pods, watcher::Config::default())).applied_objects();
/// let mut stream = std::pin::pin!(stream);
/// while let Ok(Some(pod)) = stream.try_next().await {
///     println!("{:?}", pod.metadata.name);
/// }
/// # }
/// ```
pub fn retrying<T>(
    stream: impl Stream<Item = watcher::Result<T>> + Send + 'static,
) -> impl Stream<Item = watcher::Result<T>> + Send
where
    T: Send + 'static,
{
    let backoff = KeyedBackoff::new(watch_backoff());
    // `gone`: the previous item was a 410. A second one in a row is backed off like any
    // error, so a server that keeps answering 410 is not hammered.
    futures::stream::unfold(
        (stream.boxed(), backoff, None, false),
        |(mut stream, backoff, delay, gone): (_, KeyedBackoff<()>, Option<Duration>, bool)| async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let item = stream.next().await?;
            let (delay, gone) = match &item {
                Ok(_) => (None, false),
                Err(e) if is_expired(e) && !gone => (None, true),
                Err(_) => (Some(backoff.next(&())), false),
            };
            Some((item, (stream, backoff, delay, gone)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn gone() -> watcher::Error {
        let mut status = Status::failure("too old resource version", "Expired");
        status.code = 410;
        watcher::Error::WatchError(Box::new(status))
    }

    #[tokio::test(start_paused = true)]
    async fn waits_after_errors_but_not_after_gone() {
        let items: Vec<watcher::Result<u32>> = vec![
            Err(watcher::Error::NoResourceVersion),
            Ok(1),
            Err(gone()),
            Ok(2),
            Err(gone()),
            Err(gone()),
            Ok(3),
        ];
        let start = tokio::time::Instant::now();
        let mut stream = std::pin::pin!(retrying(futures::stream::iter(items)));
        assert!(stream.next().await.unwrap().is_err());
        assert_eq!(stream.next().await.unwrap().ok(), Some(1));
        let after_error = start.elapsed();
        assert!(after_error >= Duration::from_millis(400), "{after_error:?}");
        assert!(stream.next().await.unwrap().is_err());
        assert_eq!(stream.next().await.unwrap().ok(), Some(2));
        assert_eq!(start.elapsed(), after_error, "no delay after a 410");
        assert!(stream.next().await.unwrap().is_err());
        assert!(stream.next().await.unwrap().is_err());
        assert_eq!(
            start.elapsed(),
            after_error,
            "none after the first 410 of a row"
        );
        assert_eq!(stream.next().await.unwrap().ok(), Some(3));
        assert!(
            start.elapsed() > after_error,
            "the second 410 in a row waits"
        );
        assert!(stream.next().await.is_none());
    }
}
