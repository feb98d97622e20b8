//! The crate's error type.

use std::path::PathBuf;

/// Errors returned by liqo-testenv.
///
/// Every variant that concerns a started process names the log file to read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Kubernetes binaries directory does not exist or lacks some binaries.
    #[error(
        "Kubernetes binaries not found in {dir} ({source_hint}): missing {missing}; \
         run hack/k8s-binaries.sh to build them, or point LIQO_K8S_BIN at a directory holding \
         etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok"
    )]
    BinariesNotFound {
        /// The directory that was searched.
        dir: PathBuf,
        /// Where the directory came from (`LIQO_K8S_BIN` or the default cache).
        source_hint: &'static str,
        /// The missing binaries, comma separated.
        missing: String,
    },
    /// A binary exists but does not run (wrong architecture, truncated, not executable).
    #[error(
        "{binary} does not run: {reason}; rebuild it with hack/k8s-binaries.sh or fix LIQO_K8S_BIN"
    )]
    BrokenBinary {
        /// Path of the binary.
        binary: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A port requested explicitly is already in use.
    #[error(
        "port 127.0.0.1:{port} requested for {component} is already in use; free it or let liqo-testenv pick a port"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// The component it was meant for.
        component: &'static str,
    },
    /// The cluster directory belongs to another live process.
    #[error(
        "cluster directory {dir} is in use by process {pid}; stop that process or choose another cluster name"
    )]
    ClusterDirInUse {
        /// The directory.
        dir: PathBuf,
        /// The owner process.
        pid: i32,
    },
    /// A component exited while it was starting or expected to run.
    #[error("{component} exited ({status}); see its log {log}:\n{tail}")]
    ComponentExited {
        /// The component name, e.g. `kube-apiserver`.
        component: String,
        /// Its exit status.
        status: String,
        /// Path of its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// A component did not become ready in time.
    #[error("timed out after {secs} s waiting for {what}; see the logs in {logs}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited, in seconds.
        secs: u64,
        /// Directory holding the component logs.
        logs: PathBuf,
    },
    /// A configuration value is invalid.
    #[error("invalid cluster configuration: {0}")]
    InvalidConfig(String),
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certificate(#[source] rcgen::Error),
    /// Building a client from the generated kubeconfig failed.
    #[error("loading kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Kubernetes API call failed.
    #[error("{context}: {}", liqo_core::error::KubeErrorExt::describe(source))]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
}

/// Result type of liqo-testenv.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub(crate) fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Kube { context, source }
    }
}
