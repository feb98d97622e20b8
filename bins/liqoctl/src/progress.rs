//! Progress output: one line per step with a check mark and its duration, and waits with a
//! deadline whose timeout error names what is missing.

use std::future::Future;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// Prints steps as they complete.
#[derive(Debug)]
pub(crate) struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            start: Instant::now(),
            quiet,
        }
    }

    /// Runs `fut`, printing `✔ what (1.23s)` or `✘ what`.
    pub(crate) async fn step<T>(
        &self,
        what: impl Into<String>,
        fut: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let what = what.into();
        let start = Instant::now();
        let result = fut.await;
        let elapsed = start.elapsed().as_secs_f64();
        if !self.quiet {
            match &result {
                Ok(_) => println!("✔ {what} ({elapsed:.2}s)"),
                Err(_) => println!("✘ {what} ({elapsed:.2}s)"),
            }
            let _ = std::io::stdout().flush();
        }
        result
    }

    /// Prints an informational line.
    pub(crate) fn info(&self, line: impl AsRef<str>) {
        if !self.quiet {
            println!("  {}", line.as_ref());
        }
    }

    /// Total time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// An error chain for people, outermost context first, joined by `: `: Kubernetes API errors
/// as the API server's message ([`KubeErrorExt::describe`]) instead of kube's rendering with a
/// `Debug` dump, and a cause whose text the previous part already contains left out (so the
/// API server's message appears once).
///
/// [`KubeErrorExt::describe`]: liqo_core::error::KubeErrorExt::describe
pub(crate) fn render(error: &anyhow::Error) -> String {
    use liqo_core::error::KubeErrorExt as _;
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let (text, last) = match cause.downcast_ref::<kube::Error>() {
            // Its own sources only repeat the API server's message.
            Some(kube) => (kube.describe(), true),
            None => (cause.to_string(), false),
        };
        if !parts
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            parts.push(text);
        }
        if last {
            break;
        }
    }
    parts.join(": ")
}

/// Polls `check` until it returns `Ok(Some(v))`; fails at once on `Err` and with `timeout_msg`
/// after `timeout`.
pub(crate) async fn wait_for<T, F, Fut>(
    timeout: Duration,
    timeout_msg: impl FnOnce() -> String,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            anyhow::bail!("timed out after {timeout:?}: {}", timeout_msg());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// Parses durations like `90`, `90s`, `2m`, `1h`, `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 2m)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?} is not a duration (e.g. 90s, 2m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_the_api_message_once() {
        let status = kube::core::Status::failure(
            "admission webhook \"pod.mutate.liqo.io\" denied the request: no",
            "Forbidden",
        )
        .with_code(400)
        .boxed();
        let e = anyhow::Error::new(kube::Error::Api(status)).context("creating pod x");
        let text = render(&e);
        assert_eq!(
            text,
            "creating pod x: admission webhook \"pod.mutate.liqo.io\" denied the request: no"
        );
        assert!(!text.contains("Some(") && !text.contains("Status {"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[tokio::test]
    async fn wait_for_times_out_with_the_message() {
        let err = wait_for(
            Duration::from_millis(100),
            || "no gateway".into(),
            || async { Ok(None::<()>) },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no gateway"), "{err}");
    }
}
