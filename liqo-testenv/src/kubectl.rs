//! The real kubectl against a testenv cluster, for tests that check what a user sees:
//! [`kubectl`] (one command) and [`port_forward`] (a forward kept open while the handle lives).

use std::time::Duration;

use crate::{Binaries, Cluster, Error, Result};

/// How long one kubectl command may take before the test fails (a hang is a bug).
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(120);

/// What a kubectl command ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs kubectl (the one of hack/k8s-binaries.sh) with `args` against `cluster`; the output
/// is also printed for the test log.
///
/// # Errors
///
/// [`Error::InvalidConfig`] when kubectl cannot run or takes over two minutes.
pub async fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<Output> {
    let binaries = Binaries::discover()?;
    let child = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(KUBECTL_TIMEOUT, child)
        .await
        .map_err(|_| Error::InvalidConfig(format!("kubectl {args:?} did not finish")))?
        .map_err(Error::io("running kubectl"))?;
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("kubectl {args:?} -> {output:?}");
    Ok(output)
}

/// A running `kubectl port-forward`, stopped when dropped.
#[derive(Debug)]
pub struct PortForward {
    child: tokio::process::Child,
    /// The local port (on 127.0.0.1) forwarded to the target.
    pub port: u16,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `kubectl port-forward <target> :<remote_port>` in `namespace` of `cluster`, once it
/// listens.
///
/// # Errors
///
/// [`Error::InvalidConfig`] when kubectl cannot run, ends, or does not listen within two
/// minutes (its standard error says why).
pub async fn port_forward(
    cluster: &Cluster,
    namespace: &str,
    target: &str,
    remote_port: u16,
) -> Result<PortForward> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let binaries = Binaries::discover()?;
    let mut child = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .args([
            "-n",
            namespace,
            "port-forward",
            target,
            &format!(":{remote_port}"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io("running kubectl port-forward"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::InvalidConfig("kubectl port-forward has no stdout".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    // "Forwarding from 127.0.0.1:41234 -> 8080"
    let port = tokio::time::timeout(KUBECTL_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(port) = line
                .strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse::<u16>().ok())
            {
                return Some(port);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    match port {
        Some(port) => {
            // kubectl writes a line per connection: its output must stay open and drained
            // (a closed pipe kills it at the first connection).
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            if let Some(stderr) = child.stderr.take() {
                let mut errors = tokio::io::BufReader::new(stderr).lines();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = errors.next_line().await {
                        eprintln!("kubectl port-forward: {line}");
                    }
                });
            }
            Ok(PortForward { child, port })
        }
        None => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut stderr))
                    .await;
            }
            let _ = child.start_kill();
            Err(Error::InvalidConfig(format!(
                "kubectl port-forward {namespace}/{target} did not listen: {stderr}"
            )))
        }
    }
}
