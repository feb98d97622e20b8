//! What a tenant may run on a provider, and how much of it: the pure decisions behind the
//! provider's ShadowPod webhooks and its ShadowPod controller.
//!
//! A consumer describes its offloaded pods in ShadowPods; the provider turns them into real
//! Pods with its own credentials. So the provider checks each ShadowPod as if the tenant had
//! created the Pod itself:
//!
//! - [`violations`]: the Kubernetes "baseline" Pod Security Standard (or none, per the twin
//!   namespace's `pod-security.kubernetes.io/enforce` label, which the provider sets), plus
//!   what Pod Security does not cover and a tenant must never choose: `nodeName` (bypassing
//!   the scheduler and taints) and the `system-*` priority classes (preempting the provider's
//!   own critical pods).
//! - [`demand`] and [`check_quota`]: what a pod counts against the tenant's `Quota` (the
//!   resources its ResourceSlice was granted), per the quota's `limitsEnforcement`.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
//! use liqo_reflect::offloading::pod_policy::{Level, violations};
//!
//! let mut spec = PodSpec {
//!     containers: vec![Container { name: "app".into(), ..Container::default() }],
//!     ..PodSpec::default()
//! };
//! assert!(violations(&spec, Level::Baseline).is_empty());
//! spec.host_network = Some(true);
//! spec.containers[0].security_context =
//!     Some(SecurityContext { privileged: Some(true), ..SecurityContext::default() });
//! let found = violations(&spec, Level::Baseline);
//! assert_eq!(found.len(), 2, "{found:?}");
//! // nodeName is refused at every level.
//! spec.node_name = Some("control-plane".into());
//! assert_eq!(violations(&spec, Level::Privileged).len(), 1);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements, SecurityContext};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use liqo_core::api::offloading::v1beta1::{LimitsEnforcement, QuotaSpec};
use liqo_core::labels::kubernetes as k8s_keys;
use liqo_core::quantity::{self, Milli};

/// A Pod Security Standards level, as named by `pod-security.kubernetes.io/enforce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// No restriction but Liqo's own (no `nodeName`, no `system-*` priority class).
    Privileged,
    /// The "baseline" standard: no host namespaces, host paths, host ports, privileged
    /// containers, added capabilities beyond the default set, unsafe sysctls, ... (the
    /// default for twin namespaces).
    Baseline,
    /// The "restricted" standard. Checked here as baseline; the API server's Pod Security
    /// admission enforces the rest on the Pod itself.
    Restricted,
}

impl Level {
    /// The level a namespace enforces, from its labels; [`Level::Baseline`] when the label is
    /// missing or unknown (a provider never runs tenant pods unrestricted by accident).
    #[must_use]
    pub fn of_namespace(labels: &BTreeMap<String, String>) -> Self {
        match labels
            .get(k8s_keys::POD_SECURITY_ENFORCE)
            .map(String::as_str)
        {
            Some(k8s_keys::POD_SECURITY_PRIVILEGED) => Self::Privileged,
            Some(k8s_keys::POD_SECURITY_RESTRICTED) => Self::Restricted,
            _ => Self::Baseline,
        }
    }

    /// The label value (`privileged`, `baseline`, `restricted`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => k8s_keys::POD_SECURITY_PRIVILEGED,
            Self::Baseline => k8s_keys::POD_SECURITY_BASELINE,
            Self::Restricted => k8s_keys::POD_SECURITY_RESTRICTED,
        }
    }

    /// Parses a label value.
    ///
    /// # Errors
    ///
    /// A message naming the accepted values.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            k8s_keys::POD_SECURITY_PRIVILEGED => Ok(Self::Privileged),
            k8s_keys::POD_SECURITY_BASELINE => Ok(Self::Baseline),
            k8s_keys::POD_SECURITY_RESTRICTED => Ok(Self::Restricted),
            other => Err(format!(
                "unknown Pod Security level \"{other}\": use privileged, baseline or restricted"
            )),
        }
    }
}

/// Capabilities a baseline container may add (the container runtime's default set).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Namespaced sysctls a baseline pod may set.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types a baseline pod may ask for.
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Priority classes reserved to the provider's own system components.
fn is_system_priority_class(name: &str) -> bool {
    name.starts_with("system-")
}

/// Everything in `spec` that a tenant may not run at `level`, one readable sentence each
/// (empty: allowed).
#[must_use]
pub fn violations(spec: &PodSpec, level: Level) -> Vec<String> {
    let mut out = Vec::new();
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
        out.push(
            "spec.nodeName is set: offloaded pods are placed by the provider's scheduler".into(),
        );
    }
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| is_system_priority_class(c))
    {
        out.push(format!(
            "priorityClassName {class} is reserved to the provider's system components"
        ));
    }
    if level == Level::Privileged {
        return out;
    }
    for (field, set) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if set == Some(true) {
            out.push(format!("{field} is not allowed"));
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(host) = &volume.host_path {
            out.push(format!(
                "volume {} mounts host path {}: host paths are not allowed",
                volume.name, host.path
            ));
        }
    }
    if let Some(sc) = &spec.security_context {
        check_selinux(
            "the pod",
            sc.se_linux_options
                .as_ref()
                .map(|o| (&o.type_, &o.user, &o.role)),
            &mut out,
        );
        if sc
            .seccomp_profile
            .as_ref()
            .is_some_and(|p| p.type_ == "Unconfined")
        {
            out.push("the pod's seccomp profile is Unconfined".into());
        }
        if sc
            .app_armor_profile
            .as_ref()
            .is_some_and(|p| p.type_ == "Unconfined")
        {
            out.push("the pod's AppArmor profile is Unconfined".into());
        }
        for sysctl in sc.sysctls.iter().flatten() {
            if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
                out.push(format!("sysctl {} is not allowed", sysctl.name));
            }
        }
        if sc
            .windows_options
            .as_ref()
            .is_some_and(|w| w.host_process == Some(true))
        {
            out.push("Windows host-process pods are not allowed".into());
        }
    }
    let containers = spec
        .containers
        .iter()
        .map(|c| (c.name.as_str(), &c.security_context, &c.ports))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), &c.security_context, &c.ports)),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), &c.security_context, &c.ports)),
        );
    for (name, sc, ports) in containers {
        for port in ports.iter().flatten() {
            if port.host_port.is_some_and(|p| p != 0) {
                out.push(format!(
                    "container {name} uses host port {}: host ports are not allowed",
                    port.host_port.unwrap_or_default()
                ));
            }
        }
        if let Some(sc) = sc {
            check_container(name, sc, &mut out);
        }
    }
    out
}

fn check_container(name: &str, sc: &SecurityContext, out: &mut Vec<String>) {
    if sc.privileged == Some(true) {
        out.push(format!("container {name} is privileged"));
    }
    for cap in sc
        .capabilities
        .as_ref()
        .and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
    {
        let bare = cap.trim_start_matches("CAP_");
        if !BASELINE_CAPABILITIES.contains(&bare) {
            out.push(format!("container {name} adds capability {cap}"));
        }
    }
    if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        out.push(format!("container {name} asks for an unmasked /proc"));
    }
    if sc
        .seccomp_profile
        .as_ref()
        .is_some_and(|p| p.type_ == "Unconfined")
    {
        out.push(format!("container {name}'s seccomp profile is Unconfined"));
    }
    if sc
        .app_armor_profile
        .as_ref()
        .is_some_and(|p| p.type_ == "Unconfined")
    {
        out.push(format!("container {name}'s AppArmor profile is Unconfined"));
    }
    if sc
        .windows_options
        .as_ref()
        .is_some_and(|w| w.host_process == Some(true))
    {
        out.push(format!("container {name} is a Windows host process"));
    }
    check_selinux(
        &format!("container {name}"),
        sc.se_linux_options
            .as_ref()
            .map(|o| (&o.type_, &o.user, &o.role)),
        out,
    );
}

type SeLinux<'a> = (&'a Option<String>, &'a Option<String>, &'a Option<String>);

fn check_selinux(who: &str, options: Option<SeLinux<'_>>, out: &mut Vec<String>) {
    let Some((type_, user, role)) = options else {
        return;
    };
    if let Some(t) = type_.as_deref().filter(|t| !t.is_empty())
        && !SELINUX_TYPES.contains(&t)
    {
        out.push(format!("{who} asks for SELinux type {t}"));
    }
    if user.as_deref().is_some_and(|u| !u.is_empty())
        || role.as_deref().is_some_and(|r| !r.is_empty())
    {
        out.push(format!("{who} sets an SELinux user or role"));
    }
}

/// What a pod counts against a quota: `pods` (one pod: 1000 thousandths) and, per resource,
/// the pod's effective requests (`Soft`) or limits (`Hard`): the larger of the sum over its
/// containers and the largest init container, as the scheduler counts it.
///
/// # Errors
///
/// A message when a quantity does not parse, or, under `Hard`, when a container has no limit
/// for cpu or memory or a limit different from its request (upstream's rule).
pub fn demand(
    spec: &PodSpec,
    enforcement: LimitsEnforcement,
) -> Result<BTreeMap<String, Milli>, String> {
    let mut total: BTreeMap<String, Milli> = BTreeMap::from([("pods".to_owned(), 1000)]);
    if enforcement == LimitsEnforcement::None {
        return Ok(total);
    }
    let pick = |name: &str, r: &Option<ResourceRequirements>| -> Result<_, String> {
        let empty = BTreeMap::new();
        let requests = r
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .unwrap_or(&empty);
        let limits = r.as_ref().and_then(|r| r.limits.as_ref()).unwrap_or(&empty);
        if enforcement == LimitsEnforcement::Hard {
            for key in ["cpu", "memory"] {
                match (requests.get(key), limits.get(key)) {
                    (_, None) => {
                        return Err(format!(
                            "container {name} has no {key} limit: this provider enforces hard \
                             limits (set limits equal to requests)"
                        ));
                    }
                    (Some(req), Some(lim)) if parse(req)? != parse(lim)? => {
                        return Err(format!(
                            "container {name}'s {key} limit differs from its request: this \
                             provider enforces hard limits (set them equal)"
                        ));
                    }
                    _ => {}
                }
            }
            to_milli(limits)
        } else {
            to_milli(requests)
        }
    };
    let mut containers: BTreeMap<String, Milli> = BTreeMap::new();
    for c in &spec.containers {
        for (k, v) in pick(&c.name, &c.resources)? {
            *containers.entry(k).or_insert(0) += v;
        }
    }
    let mut init: BTreeMap<String, Milli> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        for (k, v) in pick(&c.name, &c.resources)? {
            let e = init.entry(k).or_insert(0);
            *e = (*e).max(v);
        }
    }
    for (k, v) in containers.into_iter().chain(init) {
        let e = total.entry(k).or_insert(0);
        *e = (*e).max(v);
    }
    if let Some(overhead) = &spec.overhead {
        for (k, v) in to_milli(overhead)? {
            *total.entry(k).or_insert(0) += v;
        }
    }
    // The pod count is not the max of anything.
    total.insert("pods".to_owned(), 1000);
    Ok(total)
}

fn parse(q: &Quantity) -> Result<Milli, String> {
    quantity::parse(&q.0).map_err(|e| e.to_string())
}

fn to_milli(map: &BTreeMap<String, Quantity>) -> Result<BTreeMap<String, Milli>, String> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), parse(v)?)))
        .collect()
}

/// Whether one more pod demanding `demand` fits in `quota` given what the user already runs
/// (`used`, the sum of [`demand`] over its other ShadowPods). Only the resources the quota
/// names are limited.
///
/// # Errors
///
/// A message naming each resource that would go over, with what is granted and used, and the
/// cordon when the quota is cordoned.
pub fn check_quota(
    quota: &QuotaSpec,
    used: &BTreeMap<String, Milli>,
    demand: &BTreeMap<String, Milli>,
) -> Result<(), String> {
    if quota.cordoned == Some(true) {
        return Err(format!(
            "user {} is cordoned by the provider: no new pods are admitted",
            quota.user
        ));
    }
    if quota.limits_enforcement == Some(LimitsEnforcement::None) {
        return Ok(());
    }
    let mut over = Vec::new();
    for (name, granted) in &quota.resources {
        let granted = parse(granted)?;
        let want = demand.get(name).copied().unwrap_or(0);
        if want == 0 {
            continue;
        }
        let in_use = used.get(name).copied().unwrap_or(0);
        if in_use + want > granted {
            over.push(format!(
                "{name}: {} more would make {} of the {} granted",
                show(name, want),
                show(name, in_use + want),
                show(name, granted)
            ));
        }
    }
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the pod exceeds the resources granted to {} ({}); ask the provider for a larger \
             ResourceSlice or run fewer pods",
            quota.user,
            over.join("; ")
        ))
    }
}

fn show(name: &str, value: Milli) -> String {
    if name == "pods" {
        (value / 1000).to_string()
    } else {
        quantity::format_milli(value).0
    }
}

/// Adds `b` into `a`.
pub fn add(a: &mut BTreeMap<String, Milli>, b: &BTreeMap<String, Milli>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, Container, ContainerPort, HostPathVolumeSource, Volume,
    };

    fn container(name: &str, cpu: Option<&str>, limit: Option<&str>) -> Container {
        let q =
            |v: Option<&str>| v.map(|v| BTreeMap::from([("cpu".to_owned(), Quantity(v.into()))]));
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: q(cpu),
                limits: q(limit),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    #[test]
    fn baseline_refuses_every_escape_the_attack_used() {
        let spec = PodSpec {
            host_pid: Some(true),
            host_network: Some(true),
            node_name: Some("milan-control-plane".into()),
            priority_class_name: Some("system-node-critical".into()),
            volumes: Some(vec![
                Volume {
                    name: "root".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/".into(),
                        ..HostPathVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "runtime".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/run/containerd/containerd.sock".into(),
                        ..HostPathVolumeSource::default()
                    }),
                    ..Volume::default()
                },
            ]),
            containers: vec![Container {
                name: "evil".into(),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    capabilities: Some(Capabilities {
                        add: Some(vec!["SYS_ADMIN".into(), "NET_BIND_SERVICE".into()]),
                        drop: None,
                    }),
                    ..SecurityContext::default()
                }),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    host_port: Some(80),
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        };
        let v = violations(&spec, Level::Baseline);
        let text = v.join("\n");
        for needle in [
            "nodeName",
            "system-node-critical",
            "hostNetwork",
            "hostPID",
            "host path /",
            "containerd.sock",
            "privileged",
            "SYS_ADMIN",
            "host port 80",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert!(!text.contains("NET_BIND_SERVICE"), "{text}");
        // A privileged namespace still refuses Liqo's own rules.
        assert_eq!(violations(&spec, Level::Privileged).len(), 2);
    }

    #[test]
    fn level_from_labels_defaults_to_baseline() {
        let labels =
            |v: &str| BTreeMap::from([(k8s_keys::POD_SECURITY_ENFORCE.to_owned(), v.to_owned())]);
        assert_eq!(Level::of_namespace(&BTreeMap::new()), Level::Baseline);
        assert_eq!(
            Level::of_namespace(&labels("privileged")),
            Level::Privileged
        );
        assert_eq!(
            Level::of_namespace(&labels("restricted")),
            Level::Restricted
        );
        assert_eq!(Level::of_namespace(&labels("nonsense")), Level::Baseline);
        assert!(Level::parse("nonsense").is_err());
    }

    #[test]
    fn demand_counts_requests_or_limits() {
        let spec = PodSpec {
            containers: vec![
                container("a", Some("500m"), None),
                container("b", Some("250m"), None),
            ],
            init_containers: Some(vec![container("init", Some("1"), None)]),
            ..PodSpec::default()
        };
        let soft = demand(&spec, LimitsEnforcement::Soft).unwrap();
        assert_eq!(soft["cpu"], 1000, "the init container is larger");
        assert_eq!(soft["pods"], 1000);
        assert!(demand(&spec, LimitsEnforcement::Hard).is_err());
        let none = demand(&spec, LimitsEnforcement::None).unwrap();
        assert_eq!(none.len(), 1);
        let hard = PodSpec {
            containers: vec![Container {
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("1".into())),
                        ("memory".to_owned(), Quantity("1Gi".into())),
                    ])),
                    limits: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("1000m".into())),
                        ("memory".to_owned(), Quantity("1Gi".into())),
                    ])),
                    ..ResourceRequirements::default()
                }),
                ..container("c", None, None)
            }],
            ..PodSpec::default()
        };
        assert_eq!(demand(&hard, LimitsEnforcement::Hard).unwrap()["cpu"], 1000);
    }

    #[test]
    fn quota_refuses_what_goes_over() {
        let quota = QuotaSpec {
            user: "milan-0a1b2c".into(),
            limits_enforcement: Some(LimitsEnforcement::Soft),
            resources: BTreeMap::from([
                ("cpu".to_owned(), Quantity("2".into())),
                ("pods".to_owned(), Quantity("60".into())),
            ]),
            cordoned: None,
        };
        let one = BTreeMap::from([("pods".to_owned(), 1000), ("cpu".to_owned(), 500)]);
        let used = BTreeMap::from([("pods".to_owned(), 59_000), ("cpu".to_owned(), 1500)]);
        assert!(check_quota(&quota, &used, &one).is_ok());
        let used = BTreeMap::from([("pods".to_owned(), 60_000), ("cpu".to_owned(), 0)]);
        let err = check_quota(&quota, &used, &one).unwrap_err();
        assert!(
            err.contains("pods: 1 more would make 61 of the 60 granted"),
            "{err}"
        );
        let used = BTreeMap::from([("pods".to_owned(), 1000), ("cpu".to_owned(), 1600)]);
        let err = check_quota(&quota, &used, &one).unwrap_err();
        assert!(
            err.contains("cpu: 500m more would make 2100m of the 2 granted"),
            "{err}"
        );
        let cordoned = QuotaSpec {
            cordoned: Some(true),
            ..quota
        };
        assert!(
            check_quota(&cordoned, &BTreeMap::new(), &one)
                .unwrap_err()
                .contains("cordoned")
        );
    }
}
