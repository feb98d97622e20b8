//! Control-plane processes: each runs in its own process group, logs to a file, and dies with
//! the process (or thread) that started it.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::{Error, Result};

/// The components of a test cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Component {
    /// etcd.
    Etcd,
    /// kube-apiserver.
    ApiServer,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// kwok, which simulates the kubelets of the cluster's fake nodes.
    Kwok,
}

impl Component {
    /// Every component, in start order.
    pub const ALL: [Component; 5] = [
        Self::Etcd,
        Self::ApiServer,
        Self::ControllerManager,
        Self::Scheduler,
        Self::Kwok,
    ];

    /// The binary name, which is also the log file name (`<name>.log`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::ApiServer => "kube-apiserver",
            Self::ControllerManager => "kube-controller-manager",
            Self::Scheduler => "kube-scheduler",
            Self::Kwok => "kwok",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to start a component.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) log: PathBuf,
}

/// A running component. Dropping it kills its process group and reaps it.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
    pub(crate) log: PathBuf,
}

impl Process {
    pub(crate) fn spawn(spec: &Spec) -> Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(Error::io(format!("opening log {}", spec.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(Error::io(format!("opening log {}", spec.log.display())))?;
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Its own process group, so one signal reaches anything it spawns and a Ctrl-C in
            // the terminal does not hit it before we shut it down in order.
            .process_group(0);
        set_parent_death_signal(&mut cmd);
        let child = cmd.spawn().map_err(|e| Error::BrokenBinary {
            binary: spec.program.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            name: spec.name.clone(),
            child,
            log: spec.log.clone(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with [`Error::ComponentExited`] if the process is gone.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::ComponentExited {
                component: self.name.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: tail(&self.log, 25),
            }),
            Err(e) => Err(Error::io(format!("checking {}", self.name))(e)),
        }
    }

    /// Kills the whole process group and reaps the child.
    pub(crate) fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Process {
    /// SIGTERM, then SIGKILL after `grace`. Returns whether it exited within the grace period.
    pub(crate) fn terminate(&mut self, grace: std::time::Duration) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.wait();
            return true;
        }
        kill_group(self.pid(), libc::SIGTERM);
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Anything it spawned goes too.
                kill_group(self.pid(), libc::SIGKILL);
                return true;
            }
            #[allow(clippy::disallowed_methods)] // a short, bounded wait in synchronous code
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill();
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` to the process group led by `pgid`.
pub(crate) fn kill_group(pgid: u32, signal: i32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg has no memory-safety preconditions; a stale pgid yields ESRCH.
    #[allow(unsafe_code)]
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Whether a process with this pid exists.
pub(crate) fn is_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Makes the kernel SIGKILL the child when the thread that spawned it dies, so no component
/// outlives a test process that was killed (SIGKILL included, where no destructor runs).
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe prctl(2), getppid(2) and _exit(2).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // The parent may have died between fork and prctl.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The last `lines` lines of a log file (at most 64 KiB are read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(log {} cannot be read)", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A process started by a test, such as a liqo-rs binary under test, with the guarantees of
/// the cluster components: its own process group, output appended to a log file, killed
/// (with anything it spawned) when dropped or when the thread that started it dies.
///
/// ```no_run
/// # fn run() -> liqo_testenv::Result<()> {
/// use liqo_testenv::Daemon;
///
/// let mut manager = Daemon::spawn(
///     "liqo-controller-manager",
///     "target/debug/liqo-controller-manager",
///     ["--kubeconfig", "target/testenv/rome/kubeconfig"],
///     "target/testenv/rome/liqo-controller-manager.log",
/// )?;
/// manager.check_running()?; // fails with the log's tail if it exited
/// manager.kill(); // SIGKILL, as a crash would
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Daemon {
    process: Process,
}

impl Daemon {
    /// Starts `program` with `args`, appending its stdout and stderr to `log`.
    pub fn spawn<I, S>(
        name: impl Into<String>,
        program: impl AsRef<Path>,
        args: I,
        log: impl Into<PathBuf>,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let spec = Spec {
            name: name.into(),
            program: program.as_ref().to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            log: log.into(),
        };
        Ok(Self {
            process: Process::spawn(&spec)?,
        })
    }

    /// Its process id (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.process.log
    }

    /// Fails with [`Error::ComponentExited`] (with the end of its log) if it is not running.
    pub fn check_running(&mut self) -> Result<()> {
        self.process.check_running()
    }

    /// Kills it and everything it spawned with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Sends SIGTERM and waits up to `grace` for it to exit; then SIGKILL. Returns whether it
    /// exited by itself within the grace period.
    pub fn terminate(&mut self, grace: std::time::Duration) -> bool {
        self.process.terminate(grace)
    }

    /// Peak resident memory (VmHWM) in bytes, while it runs.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// CPU time (user + system) it has used so far.
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        cpu_time_of(self.pid())
    }
}

/// CPU time (user + system) used so far by process `pid` (for example a component from
/// [`Cluster::pids`](crate::Cluster::pids)); `None` once it is gone.
///
/// ```
/// let own = liqo_testenv::cpu_time_of(std::process::id());
/// assert!(own.is_some());
/// ```
pub fn cpu_time_of(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(std::time::Duration::from_millis(ticks * 1000 / hz))
}
