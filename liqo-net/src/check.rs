//! The network check behind `liqoctl test network`: is every pod of a peer reachable, from
//! the pods and from the nodes of the other cluster, over ICMP and TCP?
//!
//! - [`Probe`] is how a check reaches out: ping an address and open a TCP connection from a
//!   given [`Endpoint`]. [`NetnsProbe`] does it from Linux network namespaces (tests, the
//!   playground); `liqoctl` plugs in one that execs into pods.
//! - [`plan_peering`] (pure) lists the [`CheckCase`]s of a peering: every pod of each
//!   cluster to every pod of the other, at the address **as the source sees it** (remapped
//!   when the pod CIDRs collide), and every node of each cluster to every pod of the other.
//! - [`run_checks`] probes all cases concurrently and returns a [`CheckReport`], whose
//!   [`render`](CheckReport::render) is the table `liqoctl` prints.
//!
//! # Example
//!
//! ```no_run
//! use liqo_ipam::remap::{Mapping, RemoteCidrs};
//! use liqo_net::check::{ClusterEndpoints, Endpoint, NetnsProbe, PodEndpoint, check_peering};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Two clusters with the same pod CIDR; each sees the other's as 10.1.0.0/16.
//! let rome = ClusterEndpoints::new("rome")
//!     .with_node(Endpoint::new("rome-node", "rome-node-ns"))
//!     .with_pod(PodEndpoint::new(Endpoint::new("rome-pod", "rome-pod-ns"), "10.0.0.5".parse()?).with_tcp_port(8080));
//! let milan = ClusterEndpoints::new("milan")
//!     .with_pod(PodEndpoint::new(Endpoint::new("milan-pod", "milan-pod-ns"), "10.0.0.7".parse()?).with_tcp_port(8080));
//! let remapped = RemoteCidrs {
//!     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?],
//!     external: vec![],
//! };
//! let report = check_peering(&NetnsProbe::default(), &rome, &milan, &remapped, &remapped).await;
//! print!("{}", report.render());
//! assert!(report.all_ok());
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use liqo_ipam::remap::RemoteCidrs;
use tokio::process::Command;

use crate::{Error, Result};

/// Where a probe runs from: a name for the table and a handle the [`Probe`] understands
/// (a network namespace for [`NetnsProbe`], `namespace/pod` for a prober that execs into
/// pods, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// Shown in the table.
    pub name: String,
    /// Tells the probe where to run.
    pub handle: String,
}

impl Endpoint {
    /// An endpoint called `name`, reached through `handle`.
    #[must_use]
    pub fn new(name: impl Into<String>, handle: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            handle: handle.into(),
        }
    }
}

/// Reaches out from an [`Endpoint`]. Object safe: `&dyn Probe` is what [`run_checks`] takes.
///
/// Both methods answer `Ok(Some(rtt))` when the target answered, `Ok(None)` when it did not
/// (the check row then says FAIL), and `Err` only when the probe itself could not run (the
/// row then says ERROR with the reason).
#[async_trait]
pub trait Probe: Send + Sync {
    /// One ICMP echo from `from` to `to`; the round trip time if answered.
    async fn ping(&self, from: &Endpoint, to: IpAddr) -> Result<Option<Duration>>;

    /// A TCP connection from `from` to `to` (then closed); how long connecting took if it
    /// succeeded.
    async fn tcp_connect(&self, from: &Endpoint, to: SocketAddr) -> Result<Option<Duration>>;
}

/// A [`Probe`] that runs `ping` and a TCP connect (bash's `/dev/tcp`) inside the network
/// namespace named by [`Endpoint::handle`], with `ip netns exec`. Needs root, `ping`
/// (iputils), `bash` and `timeout` (coreutils).
///
/// ```
/// use std::time::Duration;
/// use liqo_net::check::NetnsProbe;
///
/// let probe = NetnsProbe::default().with_timeout(Duration::from_secs(2));
/// assert_eq!(probe.timeout(), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct NetnsProbe {
    timeout: Duration,
}

impl Default for NetnsProbe {
    /// One second per probe.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
        }
    }
}

impl NetnsProbe {
    /// The same probe, waiting at most `timeout` (whole seconds, at least 1) per probe.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a probe waits for an answer.
    #[must_use]
    pub const fn timeout(&self) -> Duration {
        self.timeout
    }

    fn timeout_secs(&self) -> String {
        self.timeout.as_secs().max(1).to_string()
    }

    /// Runs `args` in the namespace; `Ok(Some(stdout))` on success, `Ok(None)` on a non-zero
    /// exit, `Err` if it could not be run at all.
    async fn exec(&self, netns: &str, args: &[&str]) -> Result<Option<String>> {
        let out = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| Error::Command {
                command: format!("ip netns exec {netns} {}", args.join(" ")),
                message: format!("cannot start: {e}"),
            })?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `ip netns exec` itself failing (no such namespace, program missing) is an error of
        // the probe, not an unreachable target.
        if stderr.contains("Cannot open network namespace")
            || stderr.contains("No such file or directory")
            || out.status.code() == Some(127)
        {
            return Err(Error::Command {
                command: format!("ip netns exec {netns} {}", args.join(" ")),
                message: stderr.trim().to_owned(),
            });
        }
        Ok(None)
    }
}

#[async_trait]
impl Probe for NetnsProbe {
    async fn ping(&self, from: &Endpoint, to: IpAddr) -> Result<Option<Duration>> {
        let to = to.to_string();
        let wait = self.timeout_secs();
        let out = self
            .exec(&from.handle, &["ping", "-n", "-c", "1", "-W", &wait, &to])
            .await?;
        // A reply without a parsable time still proves reachability.
        Ok(out.map(|o| parse_ping_rtt(&o).unwrap_or_default()))
    }

    async fn tcp_connect(&self, from: &Endpoint, to: SocketAddr) -> Result<Option<Duration>> {
        let (host, port) = (to.ip().to_string(), to.port().to_string());
        let wait = self.timeout_secs();
        let started = Instant::now();
        let out = self
            .exec(
                &from.handle,
                &[
                    "timeout",
                    &wait,
                    "bash",
                    "-c",
                    "exec 3<>\"/dev/tcp/$0/$1\"",
                    &host,
                    &port,
                ],
            )
            .await?;
        Ok(out.map(|_| started.elapsed()))
    }
}

/// The round trip time in a `ping` reply line (`... time=0.123 ms`).
fn parse_ping_rtt(out: &str) -> Option<Duration> {
    let rest = out.split("time=").nth(1)?;
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let ms: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

/// What a check case is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseKind {
    /// From a pod of one cluster to a pod of the other.
    PodToPod,
    /// From a node (host network) of one cluster to a pod of the other.
    NodeToPod,
}

impl fmt::Display for CaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PodToPod => "pod-to-pod",
            Self::NodeToPod => "node-to-pod",
        })
    }
}

/// One probe target: a name, the address the source must use, and an optional TCP port.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckCase {
    /// What is checked.
    pub kind: CaseKind,
    /// Where the probes run from.
    pub source: Endpoint,
    /// The target's name.
    pub target: String,
    /// The target's address as the source sees it.
    pub address: IpAddr,
    /// A port the target listens on; no TCP probe without it.
    pub tcp_port: Option<u16>,
}

impl CheckCase {
    /// A case probing `address` from `source` (ICMP; TCP too with a port).
    #[must_use]
    pub fn new(
        kind: CaseKind,
        source: Endpoint,
        target: impl Into<String>,
        address: IpAddr,
        tcp_port: Option<u16>,
    ) -> Self {
        Self {
            kind,
            source,
            target: target.into(),
            address,
            tcp_port,
        }
    }
}

/// A pod of a cluster: where to probe from, its own (real) IP and a TCP port it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PodEndpoint {
    /// The pod as a probe source (its name is also the target name).
    pub endpoint: Endpoint,
    /// The pod IP in its own cluster.
    pub ip: IpAddr,
    /// A TCP port the pod listens on, if any.
    pub tcp_port: Option<u16>,
}

impl PodEndpoint {
    /// A pod with no TCP port.
    #[must_use]
    pub const fn new(endpoint: Endpoint, ip: IpAddr) -> Self {
        Self {
            endpoint,
            ip,
            tcp_port: None,
        }
    }

    /// The same pod, serving TCP on `port`.
    #[must_use]
    pub const fn with_tcp_port(mut self, port: u16) -> Self {
        self.tcp_port = Some(port);
        self
    }
}

/// The nodes and pods of one cluster that take part in a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterEndpoints {
    /// The cluster's name, for the table.
    pub name: String,
    /// Nodes (host network) to probe from.
    pub nodes: Vec<Endpoint>,
    /// Pods to probe from and to.
    pub pods: Vec<PodEndpoint>,
}

impl ClusterEndpoints {
    /// A cluster with no endpoints yet.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The same cluster with one more node.
    #[must_use]
    pub fn with_node(mut self, node: Endpoint) -> Self {
        self.nodes.push(node);
        self
    }

    /// The same cluster with one more pod.
    #[must_use]
    pub fn with_pod(mut self, pod: PodEndpoint) -> Self {
        self.pods.push(pod);
        self
    }
}

/// The cases of a peering between `a` and `b`, both ways: every pod and node of each cluster
/// to every pod of the other. `b_seen_from_a` translates `b`'s real addresses into how `a`
/// reaches them (its `Configuration`'s remapped CIDRs), and `a_seen_from_b` the reverse; an
/// address outside their CIDRs is used unchanged.
///
/// ```
/// use liqo_ipam::remap::{Mapping, RemoteCidrs};
/// use liqo_net::check::{CaseKind, ClusterEndpoints, Endpoint, PodEndpoint, plan_peering};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a = ClusterEndpoints::new("a")
///     .with_node(Endpoint::new("a-node", "ns-a-node"))
///     .with_pod(PodEndpoint::new(Endpoint::new("a-pod", "ns-a-pod"), "10.0.0.5".parse()?));
/// let b = ClusterEndpoints::new("b")
///     .with_pod(PodEndpoint::new(Endpoint::new("b-pod", "ns-b-pod"), "10.0.0.7".parse()?));
/// let remap = RemoteCidrs {
///     pod: vec![Mapping::new("10.0.0.0/16".parse()?, "10.1.0.0/16".parse()?)?],
///     external: vec![],
/// };
/// let cases = plan_peering(&a, &b, &remap, &remap);
/// assert_eq!(cases.len(), 3); // a-pod -> b-pod, b-pod -> a-pod, a-node -> b-pod
/// assert_eq!(cases[0].address.to_string(), "10.1.0.7");
/// assert_eq!(cases[2].kind, CaseKind::NodeToPod);
/// # Ok(()) }
/// ```
#[must_use]
pub fn plan_peering(
    a: &ClusterEndpoints,
    b: &ClusterEndpoints,
    b_seen_from_a: &RemoteCidrs,
    a_seen_from_b: &RemoteCidrs,
) -> Vec<CheckCase> {
    let mut cases = Vec::new();
    let to_pods = |cases: &mut Vec<CheckCase>,
                   kind: CaseKind,
                   sources: &mut dyn Iterator<Item = &Endpoint>,
                   targets: &[PodEndpoint],
                   view: &RemoteCidrs| {
        for source in sources {
            for target in targets {
                cases.push(CheckCase::new(
                    kind,
                    source.clone(),
                    target.endpoint.name.clone(),
                    view.to_remapped(target.ip).unwrap_or(target.ip),
                    target.tcp_port,
                ));
            }
        }
    };
    let (pods_a, pods_b) = (
        &mut a.pods.iter().map(|p| &p.endpoint),
        &mut b.pods.iter().map(|p| &p.endpoint),
    );
    to_pods(
        &mut cases,
        CaseKind::PodToPod,
        pods_a,
        &b.pods,
        b_seen_from_a,
    );
    to_pods(
        &mut cases,
        CaseKind::PodToPod,
        pods_b,
        &a.pods,
        a_seen_from_b,
    );
    to_pods(
        &mut cases,
        CaseKind::NodeToPod,
        &mut a.nodes.iter(),
        &b.pods,
        b_seen_from_a,
    );
    to_pods(
        &mut cases,
        CaseKind::NodeToPod,
        &mut b.nodes.iter(),
        &a.pods,
        a_seen_from_b,
    );
    cases
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered.
    Ok,
    /// The target did not answer.
    Fail,
    /// Not probed (no TCP port for this target).
    Skipped,
    /// The probe could not run; the reason.
    Error(String),
}

impl Outcome {
    /// Whether this outcome is fine for the check (answered, or nothing to probe).
    #[must_use]
    pub const fn is_ok(&self) -> bool {
        matches!(self, Self::Ok | Self::Skipped)
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Fail => "FAIL",
            Self::Skipped => "-",
            Self::Error(_) => "ERROR",
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckRow {
    /// The case probed.
    pub case: CheckCase,
    /// ICMP echo.
    pub icmp: Outcome,
    /// TCP connection.
    pub tcp: Outcome,
    /// Round trip time of the ICMP echo.
    pub rtt: Option<Duration>,
}

impl CheckRow {
    /// A row from its parts.
    #[must_use]
    pub const fn new(case: CheckCase, icmp: Outcome, tcp: Outcome, rtt: Option<Duration>) -> Self {
        Self {
            case,
            icmp,
            tcp,
            rtt,
        }
    }

    /// Whether both probes are fine.
    #[must_use]
    pub const fn is_ok(&self) -> bool {
        self.icmp.is_ok() && self.tcp.is_ok()
    }
}

/// The outcome of a network check: one row per case, in the order of the cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The rows.
    pub rows: Vec<CheckRow>,
}

impl CheckReport {
    /// Whether every row is fine (and there is at least one).
    #[must_use]
    pub fn all_ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(CheckRow::is_ok)
    }

    /// The rows that are not fine.
    pub fn failures(&self) -> impl Iterator<Item = &CheckRow> + '_ {
        self.rows.iter().filter(|r| !r.is_ok())
    }

    /// The table `liqoctl test network` prints: a header, one aligned line per row, and the
    /// reasons of probe errors underneath.
    ///
    /// ```
    /// use std::time::Duration;
    /// use liqo_net::check::{CaseKind, CheckCase, CheckReport, CheckRow, Endpoint, Outcome};
    ///
    /// let case = |target: &str, ip: &str| {
    ///     CheckCase::new(CaseKind::PodToPod, Endpoint::new("rome/pod-a", "ns"), target, ip.parse().unwrap(), Some(80))
    /// };
    /// let mut report = CheckReport::default();
    /// report.rows.push(CheckRow::new(case("milan/pod-b", "10.1.0.7"), Outcome::Ok, Outcome::Ok, Some(Duration::from_micros(412))));
    /// report.rows.push(CheckRow::new(case("milan/gone", "10.1.0.9"), Outcome::Fail, Outcome::Fail, None));
    /// assert_eq!(
    ///     report.render(),
    ///     "CHECK       SOURCE      TARGET       ADDRESS   ICMP  TCP   RTT\n\
    ///      pod-to-pod  rome/pod-a  milan/pod-b  10.1.0.7  OK    OK    0.412 ms\n\
    ///      pod-to-pod  rome/pod-a  milan/gone   10.1.0.9  FAIL  FAIL  -\n"
    /// );
    /// assert!(!report.all_ok());
    /// ```
    #[must_use]
    pub fn render(&self) -> String {
        let header =
            ["CHECK", "SOURCE", "TARGET", "ADDRESS", "ICMP", "TCP", "RTT"].map(String::from);
        let lines: Vec<[String; 7]> = std::iter::once(header)
            .chain(self.rows.iter().map(|r| {
                [
                    r.case.kind.to_string(),
                    r.case.source.name.clone(),
                    r.case.target.clone(),
                    r.case.address.to_string(),
                    r.icmp.label().to_owned(),
                    r.tcp.label().to_owned(),
                    r.rtt.map_or_else(
                        || "-".to_owned(),
                        |d| format!("{:.3} ms", d.as_secs_f64() * 1000.0),
                    ),
                ]
            }))
            .collect();
        let mut widths = [0usize; 7];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in &lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i + 1 == line.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        for row in &self.rows {
            for outcome in [&row.icmp, &row.tcp] {
                if let Outcome::Error(reason) = outcome {
                    out.push_str(&format!(
                        "error: {} -> {}: {reason}\n",
                        row.case.source.name, row.case.target
                    ));
                }
            }
        }
        out
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Probes every case (all concurrently) and returns the rows in the order of `cases`.
///
/// ```no_run
/// use liqo_net::check::{CaseKind, CheckCase, Endpoint, NetnsProbe, run_checks};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cases = [CheckCase::new(
///     CaseKind::PodToPod, Endpoint::new("pod-a", "netns-a"), "pod-b", "10.1.0.7".parse().unwrap(), Some(8080),
/// )];
/// let report = run_checks(&NetnsProbe::default(), &cases).await;
/// print!("{report}");
/// # }
/// ```
pub async fn run_checks(probe: &dyn Probe, cases: &[CheckCase]) -> CheckReport {
    let rows = futures::future::join_all(cases.iter().map(|case| async move {
        let (icmp, rtt) = match probe.ping(&case.source, case.address).await {
            Ok(Some(rtt)) => (Outcome::Ok, Some(rtt)),
            Ok(None) => (Outcome::Fail, None),
            Err(e) => (Outcome::Error(e.to_string()), None),
        };
        let tcp = match case.tcp_port {
            None => Outcome::Skipped,
            Some(port) => match probe
                .tcp_connect(&case.source, SocketAddr::new(case.address, port))
                .await
            {
                Ok(Some(_)) => Outcome::Ok,
                Ok(None) => Outcome::Fail,
                Err(e) => Outcome::Error(e.to_string()),
            },
        };
        CheckRow::new(case.clone(), icmp, tcp, rtt)
    }))
    .await;
    CheckReport { rows }
}

/// The network check of a peering: [`plan_peering`] then [`run_checks`]. The entry point of
/// `liqoctl test network`; see the [module documentation](self) for an example.
pub async fn check_peering(
    probe: &dyn Probe,
    a: &ClusterEndpoints,
    b: &ClusterEndpoints,
    b_seen_from_a: &RemoteCidrs,
    a_seen_from_b: &RemoteCidrs,
) -> CheckReport {
    run_checks(probe, &plan_peering(a, b, b_seen_from_a, a_seen_from_b)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use std::sync::Mutex;

    use super::*;

    #[test]
    fn ping_output_parsing() {
        let out = "PING 10.1.0.7 (10.1.0.7) 56(84) bytes of data.\n\
                   64 bytes from 10.1.0.7: icmp_seq=1 ttl=62 time=0.412 ms\n";
        assert_eq!(parse_ping_rtt(out), Some(Duration::from_micros(412)));
        assert_eq!(
            parse_ping_rtt("64 bytes: time=12 ms"),
            Some(Duration::from_millis(12))
        );
        assert_eq!(parse_ping_rtt("no reply"), None);
    }

    /// Answers only for the addresses it knows; records what it was asked.
    struct Scripted {
        reachable: Vec<IpAddr>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Probe for Scripted {
        async fn ping(&self, from: &Endpoint, to: IpAddr) -> Result<Option<Duration>> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("ping {} {to}", from.handle));
            if from.handle == "broken" {
                return Err(Error::Backend("no such namespace".into()));
            }
            Ok(self
                .reachable
                .contains(&to)
                .then_some(Duration::from_millis(1)))
        }

        async fn tcp_connect(&self, from: &Endpoint, to: SocketAddr) -> Result<Option<Duration>> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("tcp {} {to}", from.handle));
            Ok(self
                .reachable
                .contains(&to.ip())
                .then_some(Duration::from_millis(1)))
        }
    }

    #[tokio::test]
    async fn rows_follow_the_probe() {
        let probe = Scripted {
            reachable: vec!["10.1.0.7".parse().unwrap()],
            asked: Mutex::default(),
        };
        let case = |handle: &str, ip: &str, port| {
            CheckCase::new(
                CaseKind::PodToPod,
                Endpoint::new(handle, handle),
                "t",
                ip.parse().unwrap(),
                port,
            )
        };
        let report = run_checks(
            &probe,
            &[
                case("a", "10.1.0.7", Some(80)),
                case("a", "10.1.0.8", None),
                case("broken", "10.1.0.7", None),
            ],
        )
        .await;
        assert_eq!(report.rows[0].icmp, Outcome::Ok);
        assert_eq!(report.rows[0].tcp, Outcome::Ok);
        assert_eq!(
            (report.rows[1].icmp.clone(), report.rows[1].tcp.clone()),
            (Outcome::Fail, Outcome::Skipped)
        );
        assert!(matches!(report.rows[2].icmp, Outcome::Error(_)));
        assert_eq!(report.failures().count(), 2);
        assert!(!report.all_ok());
        assert!(
            report
                .render()
                .contains("error: broken -> t: backend error: no such namespace")
        );
        assert_eq!(probe.asked.lock().unwrap().len(), 4); // no TCP probe without a port
        assert!(
            !CheckReport::default().all_ok(),
            "an empty check proves nothing"
        );
    }

    #[test]
    fn peering_plan_uses_each_side_view() {
        use liqo_ipam::remap::Mapping;
        let pod = |name: &str, ip: &str| {
            PodEndpoint::new(Endpoint::new(name, name), ip.parse().unwrap()).with_tcp_port(80)
        };
        let a = ClusterEndpoints::new("a")
            .with_node(Endpoint::new("a-node", "a-node"))
            .with_pod(pod("a1", "10.0.0.5"))
            .with_pod(pod("a2", "10.0.1.5"));
        let b = ClusterEndpoints::new("b")
            .with_node(Endpoint::new("b-node", "b-node"))
            .with_pod(pod("b1", "10.0.0.7"));
        let b_from_a = RemoteCidrs {
            pod: vec![
                Mapping::new(
                    "10.0.0.0/16".parse().unwrap(),
                    "10.1.0.0/16".parse().unwrap(),
                )
                .unwrap(),
            ],
            external: vec![],
        };
        let a_from_b = RemoteCidrs {
            pod: vec![
                Mapping::new(
                    "10.0.0.0/16".parse().unwrap(),
                    "10.2.0.0/16".parse().unwrap(),
                )
                .unwrap(),
            ],
            external: vec![],
        };
        let cases = plan_peering(&a, &b, &b_from_a, &a_from_b);
        let summary: Vec<String> = cases
            .iter()
            .map(|c| format!("{} {}>{}@{}", c.kind, c.source.name, c.target, c.address))
            .collect();
        assert_eq!(
            summary,
            [
                "pod-to-pod a1>b1@10.1.0.7",
                "pod-to-pod a2>b1@10.1.0.7",
                "pod-to-pod b1>a1@10.2.0.5",
                "pod-to-pod b1>a2@10.2.1.5",
                "node-to-pod a-node>b1@10.1.0.7",
                "node-to-pod b-node>a1@10.2.0.5",
                "node-to-pod b-node>a2@10.2.1.5",
            ]
        );
        // Outside the mapped CIDRs, the address is used as it is.
        let cases = plan_peering(&a, &b, &RemoteCidrs::default(), &RemoteCidrs::default());
        assert_eq!(cases[0].address.to_string(), "10.0.0.7");
    }
}
