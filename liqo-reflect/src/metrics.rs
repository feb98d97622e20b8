//! Reflection metrics in the Prometheus text format.
//!
//! Per reflector: objects reflected (applied or deleted remotely), errors, queue depth, and the
//! latency from an object's change being seen to its twin being written.

use std::{
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Counters of one reflector. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct ReflectorMetrics {
    reflected: AtomicU64,
    errors: AtomicU64,
    queue_depth: AtomicI64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl ReflectorMetrics {
    /// Objects reflected so far.
    pub fn reflected(&self) -> u64 {
        self.reflected.load(Ordering::Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Keys waiting in the queue now.
    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.load(Ordering::Relaxed)
    }

    pub(crate) fn observe_reflected(&self, latency: Duration) {
        self.reflected.fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn observe_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_queue_depth(&self, depth: usize) {
        self.queue_depth
            .store(i64::try_from(depth).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

/// Metrics of each reflector, by name, in registration order.
type Entries = Arc<Mutex<Vec<(String, Arc<ReflectorMetrics>)>>>;

/// The metrics of every reflector of a [`ReflectionManager`](crate::ReflectionManager).
#[derive(Debug, Default, Clone)]
pub struct Registry {
    reflectors: Entries,
}

impl Registry {
    /// Registers (or returns the already registered) metrics of reflector `name`.
    pub fn reflector(&self, name: &str) -> Arc<ReflectorMetrics> {
        let mut all = match self.reflectors.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, m)) = all.iter().find(|(n, _)| n == name) {
            return m.clone();
        }
        let metrics = Arc::new(ReflectorMetrics::default());
        all.push((name.to_owned(), metrics.clone()));
        metrics
    }

    /// Renders every metric in the Prometheus text exposition format.
    ///
    /// ```
    /// let registry = liqo_reflect::metrics::Registry::default();
    /// registry.reflector("configmaps");
    /// let text = registry.render();
    /// assert!(text.contains("liqo_reflection_items_total{reflector=\"configmaps\"} 0"));
    /// ```
    pub fn render(&self) -> String {
        let all = match self.reflectors.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut out = String::new();
        let mut family =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&ReflectorMetrics) -> String| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (reflector, m) in &all {
                    let _ = writeln!(out, "{name}{{reflector=\"{reflector}\"}} {}", value(m));
                }
            };
        family(
            "liqo_reflection_items_total",
            "counter",
            "Objects reflected (twin written or deleted) by each reflector.",
            &|m| m.reflected().to_string(),
        );
        family(
            "liqo_reflection_errors_total",
            "counter",
            "Reflection attempts that failed.",
            &|m| m.errors().to_string(),
        );
        family(
            "liqo_reflection_queue_depth",
            "gauge",
            "Objects waiting to be reflected.",
            &|m| m.queue_depth().to_string(),
        );
        let name = "liqo_reflection_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From a change being seen to its twin being written.\n# TYPE {name} histogram"
        );
        for (reflector, m) in &all {
            for (bound, bucket) in BUCKETS.iter().zip(&m.latency_buckets) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{reflector=\"{reflector}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = m.latency_count.load(Ordering::Relaxed);
            let sum = m.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{reflector=\"{reflector}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{name}_sum{{reflector=\"{reflector}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{reflector=\"{reflector}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let registry = Registry::default();
        let m = registry.reflector("secrets");
        m.observe_reflected(Duration::from_millis(7));
        m.observe_reflected(Duration::from_secs(2));
        m.observe_error();
        let text = registry.render();
        assert!(
            text.contains("liqo_reflection_items_total{reflector=\"secrets\"} 2"),
            "{text}"
        );
        assert!(text.contains("liqo_reflection_errors_total{reflector=\"secrets\"} 1"));
        assert!(text.contains("le=\"0.005\"} 0"));
        assert!(text.contains("le=\"0.01\"} 1"));
        assert!(text.contains("le=\"5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(Arc::ptr_eq(&m, &registry.reflector("secrets")));
    }
}
