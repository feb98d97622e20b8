//! The kubelet's resource statistics for the pods of the virtual node, from the provider's
//! metrics pipeline: `/stats/summary` (the Summary API, JSON) and `/metrics/resource` (the
//! Prometheus text metrics-server scrapes), so `kubectl top` works on the consumer where the
//! provider serves `metrics.k8s.io`.
//!
//! The provider's `PodMetrics` of the twins give instantaneous usage (CPU in cores over a
//! window, memory working set); the kubelet reports CPU as a cumulative counter as well, so
//! [`CpuCounters`] integrates the usage over the samples' timestamps. The rendering is pure.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

/// One container of a provider's `PodMetrics` (metrics.k8s.io/v1beta1).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ContainerMetrics {
    /// The container name.
    pub name: String,
    /// `cpu` and `memory` quantities.
    #[serde(default)]
    pub usage: BTreeMap<String, String>,
}

/// The fields of a provider's `PodMetrics` this module reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PodMetrics {
    /// When the usage was measured (RFC 3339).
    pub timestamp: String,
    /// The measurement window (`30s`).
    #[serde(default)]
    pub window: String,
    /// Per-container usage.
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// CPU in nanocores from a Kubernetes quantity (`12345n`, `5u`, `250m`, `2`).
#[must_use]
pub fn nanocores(quantity: &str) -> Option<u64> {
    let q = quantity.trim();
    let scaled = |digits: &str, factor: f64| digits.parse::<f64>().ok().map(|v| v * factor);
    let value = if let Some(n) = q.strip_suffix('n') {
        scaled(n, 1.0)
    } else if let Some(u) = q.strip_suffix('u') {
        scaled(u, 1e3)
    } else if let Some(m) = q.strip_suffix('m') {
        scaled(m, 1e6)
    } else {
        scaled(q, 1e9)
    }?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value.is_finite() && value >= 0.0).then_some(value.round() as u64)
}

/// Memory in bytes from a Kubernetes quantity (`1234Ki`, `5Mi`, `1000`).
#[must_use]
pub fn bytes(quantity: &str) -> Option<u64> {
    let milli = liqo_core::quantity::parse(quantity).ok()?;
    u64::try_from(milli / 1000).ok()
}

/// One pod of the virtual node with its twin's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    /// The local namespace.
    pub namespace: String,
    /// The pod name (the twin has the same).
    pub name: String,
    /// The local pod's UID.
    pub uid: String,
    /// The twin's metrics.
    pub metrics: PodMetrics,
}

/// Cumulative CPU time per container (`<namespace>/<pod>/<container>`), integrated from the
/// successive usage samples.
#[derive(Debug, Default)]
pub struct CpuCounters {
    seen: HashMap<String, (Timestamp, f64)>,
}

impl CpuCounters {
    /// Folds a sample in and returns the cumulative CPU seconds: the first sample counts its
    /// usage over its window; the next ones over the time since the previous sample.
    pub fn update(&mut self, key: &str, at: Timestamp, window_secs: f64, nanocores: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let cores = nanocores as f64 / 1e9;
        let total = match self.seen.get(key) {
            Some((last, total)) if at > *last => {
                let secs = at.duration_since(*last).as_secs_f64();
                total + cores * secs
            }
            Some((_, total)) => *total,
            None => cores * window_secs,
        };
        self.seen.insert(key.to_owned(), (at, total));
        total
    }

    /// Forgets the containers not in `keep` (pods gone).
    pub fn retain(&mut self, keep: &std::collections::HashSet<String>) {
        self.seen.retain(|k, _| keep.contains(k));
    }
}

fn window_secs(window: &str) -> f64 {
    window
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// A container's figures, as both renderings need them.
struct Figures {
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    at: Timestamp,
    nanocores: u64,
    cpu_seconds: f64,
    memory: u64,
}

fn figures(samples: &[PodSample], counters: &mut CpuCounters) -> Vec<Figures> {
    let mut out = Vec::new();
    let mut keep = std::collections::HashSet::new();
    for sample in samples {
        let Ok(at) = sample.metrics.timestamp.parse::<Timestamp>() else {
            continue;
        };
        let window = window_secs(&sample.metrics.window);
        for c in &sample.metrics.containers {
            let key = format!("{}/{}/{}", sample.namespace, sample.name, c.name);
            let cores = c.usage.get("cpu").and_then(|q| nanocores(q)).unwrap_or(0);
            let memory = c.usage.get("memory").and_then(|q| bytes(q)).unwrap_or(0);
            let cpu_seconds = counters.update(&key, at, window, cores);
            keep.insert(key);
            out.push(Figures {
                namespace: sample.namespace.clone(),
                pod: sample.name.clone(),
                uid: sample.uid.clone(),
                container: c.name.clone(),
                at,
                nanocores: cores,
                cpu_seconds,
                memory,
            });
        }
    }
    counters.retain(&keep);
    out
}

/// `/metrics/resource` in the Prometheus text format, as the kubelet writes it (the series
/// metrics-server reads): node, pod and container CPU (cumulative seconds) and memory working
/// set, with the samples' timestamps.
///
/// ```
/// use std::collections::BTreeMap;
/// use liqo_reflect::virtual_kubelet::stats::{ContainerMetrics, CpuCounters, PodMetrics, PodSample, resource_metrics};
///
/// let sample = PodSample {
///     namespace: "demo".into(), name: "web".into(), uid: "u1".into(),
///     metrics: PodMetrics {
///         timestamp: "2026-01-01T00:00:00Z".into(), window: "30s".into(),
///         containers: vec![ContainerMetrics { name: "nginx".into(), usage: BTreeMap::from([
///             ("cpu".into(), "100m".into()), ("memory".into(), "10Mi".into()),
///         ]) }],
///     },
/// };
/// let text = resource_metrics(&[sample], &mut CpuCounters::default());
/// assert!(text.contains("container_memory_working_set_bytes{container=\"nginx\",namespace=\"demo\",pod=\"web\"} 10485760"));
/// assert!(text.contains("container_cpu_usage_seconds_total{container=\"nginx\",namespace=\"demo\",pod=\"web\"} 3 "));
/// ```
pub fn resource_metrics(samples: &[PodSample], counters: &mut CpuCounters) -> String {
    let all = figures(samples, counters);
    let mut out = String::new();
    let ms = |t: Timestamp| t.as_millisecond();
    let _ = writeln!(
        out,
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter"
    );
    for f in &all {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
            f.container,
            f.namespace,
            f.pod,
            f.cpu_seconds,
            ms(f.at)
        );
    }
    let _ = writeln!(
        out,
        "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge"
    );
    for f in &all {
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
            f.container,
            f.namespace,
            f.pod,
            f.memory,
            ms(f.at)
        );
    }
    let mut pods: BTreeMap<(String, String), (f64, u64, Timestamp)> = BTreeMap::new();
    for f in &all {
        let e = pods
            .entry((f.namespace.clone(), f.pod.clone()))
            .or_insert((0.0, 0, f.at));
        e.0 += f.cpu_seconds;
        e.1 += f.memory;
        e.2 = e.2.max(f.at);
    }
    let _ = writeln!(
        out,
        "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter"
    );
    for ((ns, pod), (cpu, _, at)) in &pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{namespace=\"{ns}\",pod=\"{pod}\"}} {cpu} {}",
            ms(*at)
        );
    }
    let _ = writeln!(
        out,
        "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge"
    );
    for ((ns, pod), (_, memory, at)) in &pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{namespace=\"{ns}\",pod=\"{pod}\"}} {memory} {}",
            ms(*at)
        );
    }
    if let Some(at) = all.iter().map(|f| f.at).max() {
        let cpu: f64 = all.iter().map(|f| f.cpu_seconds).sum();
        let memory: u64 = all.iter().map(|f| f.memory).sum();
        let _ = writeln!(
            out,
            "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {cpu} {}\n# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {memory} {}",
            ms(at),
            ms(at)
        );
    }
    let _ = writeln!(
        out,
        "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0"
    );
    out
}

/// `/stats/summary` (the kubelet Summary API): the node's and each pod's CPU (nanocores and
/// cumulative core-nanoseconds) and memory working set.
///
/// ```
/// use liqo_reflect::virtual_kubelet::stats::{CpuCounters, summary};
///
/// let empty = summary("milan", &[], &mut CpuCounters::default());
/// assert_eq!(empty["node"]["nodeName"], "milan");
/// assert_eq!(empty["pods"].as_array().unwrap().len(), 0);
/// ```
pub fn summary(node: &str, samples: &[PodSample], counters: &mut CpuCounters) -> serde_json::Value {
    let all = figures(samples, counters);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let cpu = |at: Timestamp, nanocores: u64, seconds: f64| {
        serde_json::json!({
            "time": at.to_string(),
            "usageNanoCores": nanocores,
            "usageCoreNanoSeconds": (seconds * 1e9) as u64,
        })
    };
    let memory = |at: Timestamp, bytes: u64| serde_json::json!({"time": at.to_string(), "workingSetBytes": bytes, "usageBytes": bytes});
    let mut pods: BTreeMap<(String, String), Vec<&Figures>> = BTreeMap::new();
    for f in &all {
        pods.entry((f.namespace.clone(), f.pod.clone()))
            .or_default()
            .push(f);
    }
    let pods: Vec<serde_json::Value> = pods
        .into_iter()
        .filter_map(|((namespace, name), containers)| {
            let at = containers.iter().map(|f| f.at).max()?;
            let nanocores = containers.iter().map(|f| f.nanocores).sum();
            let seconds = containers.iter().map(|f| f.cpu_seconds).sum();
            let bytes = containers.iter().map(|f| f.memory).sum();
            Some(serde_json::json!({
                "podRef": {"name": name, "namespace": namespace, "uid": containers[0].uid},
                "containers": containers.iter().map(|f| serde_json::json!({
                    "name": f.container,
                    "cpu": cpu(f.at, f.nanocores, f.cpu_seconds),
                    "memory": memory(f.at, f.memory),
                })).collect::<Vec<_>>(),
                "cpu": cpu(at, nanocores, seconds),
                "memory": memory(at, bytes),
            }))
        })
        .collect();
    let at = all
        .iter()
        .map(|f| f.at)
        .max()
        .unwrap_or_else(Timestamp::now);
    let nanocores = all.iter().map(|f| f.nanocores).sum();
    let seconds = all.iter().map(|f| f.cpu_seconds).sum();
    let bytes = all.iter().map(|f| f.memory).sum();
    serde_json::json!({
        "node": {
            "nodeName": node,
            "cpu": cpu(at, nanocores, seconds),
            "memory": memory(at, bytes),
        },
        "pods": pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(nanocores("12345n"), Some(12_345));
        assert_eq!(nanocores("5u"), Some(5_000));
        assert_eq!(nanocores("250m"), Some(250_000_000));
        assert_eq!(nanocores("2"), Some(2_000_000_000));
        assert_eq!(nanocores("x"), None);
        assert_eq!(bytes("1Ki"), Some(1024));
        assert_eq!(bytes("5Mi"), Some(5 * 1024 * 1024));
    }

    #[test]
    fn cpu_counters_integrate_usage_between_samples() {
        let mut c = CpuCounters::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        // 0.5 cores over a 30 s window, then 1 core for 10 s.
        assert!((c.update("k", t0, 30.0, 500_000_000) - 15.0).abs() < 1e-9);
        assert!((c.update("k", t1, 30.0, 1_000_000_000) - 25.0).abs() < 1e-9);
        // The same sample again changes nothing.
        assert!((c.update("k", t1, 30.0, 1_000_000_000) - 25.0).abs() < 1e-9);
    }
}
