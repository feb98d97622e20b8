//! How virtual kubelets are started: the [`Launcher`] seam and its process implementation.

use std::{collections::HashMap, fmt::Debug, path::PathBuf, process::Stdio};

use async_trait::async_trait;
use tokio::{
    process::{Child, Command},
    sync::Mutex,
};
use tracing::{info, warn};

use crate::{Error, Result};

/// What to run for one VirtualNode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Unique key of the virtual kubelet (`<namespace>/<VirtualNode name>`).
    pub key: String,
    /// Command-line arguments of `liqo-virtual-kubelet` (see [`kubelet_args`](super::controller::kubelet_args)).
    pub args: Vec<String>,
    /// A token of the kubelet's own ServiceAccount (see
    /// [`identity`](super::identity)), refreshed before it expires: the kubelet authenticates
    /// with it instead of the launcher's credentials. `None`: the launcher's credentials.
    pub token: Option<String>,
}

/// Starts and stops virtual kubelets. The default runs them as local processes
/// ([`ProcessLauncher`]); an in-cluster deployment would create a Deployment per VirtualNode.
///
/// ```
/// use std::{collections::HashMap, sync::Mutex};
///
/// use async_trait::async_trait;
/// use liqo_reflect::virtual_kubelet::launcher::{LaunchSpec, Launcher};
///
/// /// Records what would run (e.g. for a dry run).
/// #[derive(Default)]
/// struct Recorder(Mutex<HashMap<String, Vec<String>>>);
///
/// #[async_trait]
/// impl Launcher for Recorder {
///     async fn ensure(&self, spec: &LaunchSpec) -> liqo_reflect::Result<bool> {
///         let previous = self.0.lock().unwrap().insert(spec.key.clone(), spec.args.clone());
///         Ok(previous.as_ref() != Some(&spec.args))
///     }
///     async fn stop(&self, key: &str) -> liqo_reflect::Result<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> liqo_reflect::Result<()> {
/// let launcher = Recorder::default();
/// let spec = LaunchSpec {
///     key: "liqo-tenant-milan/milan".into(),
///     args: vec!["--virtual-node-name".into(), "milan".into()],
///     token: None,
/// };
/// assert!(launcher.ensure(&spec).await?);
/// assert!(!launcher.ensure(&spec).await?); // already running with these arguments
/// launcher.stop(&spec.key).await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    /// Makes sure the virtual kubelet `spec.key` runs with `spec.args` (starting it, or
    /// restarting it when it exited or its arguments changed). Returns whether it was
    /// (re)started. Idempotent.
    async fn ensure(&self, spec: &LaunchSpec) -> Result<bool>;

    /// Stops the virtual kubelet `key`, if running. Idempotent.
    async fn stop(&self, key: &str) -> Result<()>;
}

/// Runs each virtual kubelet as a child process of this one (killed when the launcher is
/// dropped), with its output appended to `<log_dir>/<key with / as _>.log` when a log
/// directory is set.
pub struct ProcessLauncher {
    program: PathBuf,
    base_args: Vec<String>,
    log_dir: Option<PathBuf>,
    token_dir: PathBuf,
    children: Mutex<HashMap<String, (Vec<String>, Child)>>,
}

impl Debug for ProcessLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLauncher")
            .field("program", &self.program)
            .field("base_args", &self.base_args)
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

impl ProcessLauncher {
    /// Runs `program` (the `liqo-virtual-kubelet` binary) with `base_args` (e.g.
    /// `--kubeconfig <path>`) before each kubelet's own arguments.
    pub fn new(program: impl Into<PathBuf>, base_args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            base_args,
            log_dir: None,
            token_dir: std::env::temp_dir().join(format!(
                "liqo-virtual-kubelet-tokens-{}",
                std::process::id()
            )),
            children: Mutex::default(),
        }
    }

    /// Appends each kubelet's output to a file in `dir`.
    #[must_use]
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Keeps the kubelets' tokens in `dir` (created with mode 0700, each token file 0600;
    /// default: a directory of this process under the system's temporary directory).
    #[must_use]
    pub fn token_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.token_dir = dir.into();
        self
    }

    /// Writes `token` for kubelet `key` (atomically, readable by this user only) and returns
    /// the arguments that make the kubelet use it.
    fn write_token(&self, key: &str, token: &str) -> Result<Vec<String>> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let io = |e: std::io::Error| {
            Error::InvalidConfig(format!("token directory {}: {e}", self.token_dir.display()))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.token_dir)
            .map_err(io)?;
        let path = self
            .token_dir
            .join(format!("{}.token", key.replace('/', "_")));
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != token {
            let tmp = path.with_extension("token.tmp");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            file.write_all(token.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
        }
        Ok(vec!["--token-file".to_owned(), path.display().to_string()])
    }

    /// Process id of the virtual kubelet `key`, if it runs.
    pub async fn pid(&self, key: &str) -> Option<u32> {
        let mut children = self.children.lock().await;
        let (_, child) = children.get_mut(key)?;
        match child.try_wait() {
            Ok(None) => child.id(),
            _ => None,
        }
    }

    fn spawn(&self, spec: &LaunchSpec, identity: &[String]) -> Result<Child> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.base_args)
            .args(&spec.args)
            .args(identity)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // A virtual kubelet must not outlive the process that launched it (a SIGKILLed
        // controller-manager would otherwise leave orphans running next to their successors).
        #[allow(unsafe_code)]
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and only affects the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if let Some(dir) = &self.log_dir {
            let io = |e: std::io::Error| {
                Error::InvalidConfig(format!("log directory {}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            let path = dir.join(format!("{}.log", spec.key.replace('/', "_")));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            let err = file.try_clone().map_err(io)?;
            command.stdout(file).stderr(err);
        }
        command.spawn().map_err(|e| {
            Error::InvalidConfig(format!(
                "cannot run the virtual kubelet {}: {e}",
                self.program.display()
            ))
        })
    }
}

#[async_trait]
impl Launcher for ProcessLauncher {
    async fn ensure(&self, spec: &LaunchSpec) -> Result<bool> {
        // The token file is rewritten in place when the token is renewed: the kubelet reads
        // it again by itself, no restart.
        let identity = match &spec.token {
            Some(token) => self.write_token(&spec.key, token)?,
            None => Vec::new(),
        };
        let mut children = self.children.lock().await;
        if let Some((args, child)) = children.get_mut(&spec.key) {
            match child.try_wait() {
                Ok(None) if *args == spec.args => return Ok(false),
                Ok(None) => {
                    info!(key = %spec.key, "arguments changed: restarting the virtual kubelet");
                    let _ = child.kill().await;
                }
                Ok(Some(status)) => {
                    warn!(key = %spec.key, %status, "the virtual kubelet exited: restarting it");
                }
                Err(e) => warn!(key = %spec.key, error = %e, "cannot check the virtual kubelet"),
            }
        }
        let child = self.spawn(spec, &identity)?;
        info!(key = %spec.key, pid = ?child.id(), "virtual kubelet started");
        children.insert(spec.key.clone(), (spec.args.clone(), child));
        Ok(true)
    }

    async fn stop(&self, key: &str) -> Result<()> {
        let _ = std::fs::remove_file(
            self.token_dir
                .join(format!("{}.token", key.replace('/', "_"))),
        );
        let child = self.children.lock().await.remove(key);
        if let Some((_, mut child)) = child {
            let _ = child.kill().await;
            info!(%key, "virtual kubelet stopped");
        }
        Ok(())
    }
}
