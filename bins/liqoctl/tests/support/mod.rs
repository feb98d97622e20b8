//! Shared helpers of the peering tests: clusters with liqo-controller-manager, and liqoctl.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Resource};
use liqo_testenv::{Cluster, ClusterConfig, Daemon};

/// The liqo-controller-manager binary, next to liqoctl in the target directory (built with
/// `cargo build -p liqo-controller-manager` when missing or older than this test).
pub(crate) fn controller_manager() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let liqoctl = PathBuf::from(env!("CARGO_BIN_EXE_liqoctl"));
            let path = liqoctl.with_file_name("liqo-controller-manager");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-q", "-p", "liqo-controller-manager"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build -p liqo-controller-manager");
            assert!(
                status.success(),
                "cargo build -p liqo-controller-manager failed"
            );
            assert!(path.exists(), "{} missing", path.display());
            path
        })
        .clone()
}

/// Builds liqo-virtual-kubelet (next to liqo-controller-manager, which starts one per
/// VirtualNode) once per test binary.
pub(crate) fn build_virtual_kubelet() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "liqo-virtual-kubelet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build -p liqo-virtual-kubelet");
        assert!(
            status.success(),
            "cargo build -p liqo-virtual-kubelet failed"
        );
    });
}

/// Waits until the virtual node `name` of `consumer` is Ready; returns it.
pub(crate) async fn virtual_node_ready(
    consumer: &Cluster,
    name: &str,
) -> k8s_openapi::api::core::v1::Node {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(consumer.client());
    liqo_testenv::eventually(&format!("virtual node {name} Ready"), WAIT, || async {
        let node = nodes.get_opt(name).await.ok()??;
        let ready = node
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(node)
    })
    .await
}

/// Starts clusters (no fake nodes but one, to have allocatable resources) with the CRDs.
pub(crate) async fn clusters(names: &[&str]) -> Vec<Cluster> {
    let configs = names
        .iter()
        .map(|n| ClusterConfig::new(*n).nodes(1))
        .collect();
    let clusters = Cluster::start_all(configs).await.unwrap();
    for c in &clusters {
        c.install_crds(liqo_core::api::crds()).await.unwrap();
    }
    clusters
}

/// Starts liqo-controller-manager on `cluster` with cluster id `id`.
pub(crate) fn manager(cluster: &Cluster, id: &str, extra: &[&str]) -> Daemon {
    let pod = cluster.pod_cidr().to_string();
    let svc = cluster.service_cidr().to_string();
    let mut args = vec![
        "--cluster-id",
        id,
        "--pod-cidr",
        &pod,
        "--service-cidr",
        &svc,
        "--resync-seconds",
        "10",
    ];
    args.extend_from_slice(extra);
    cluster
        .daemon(
            "liqo-controller-manager",
            controller_manager(),
            args.iter().copied(),
        )
        .unwrap()
}

/// Waits until liqo-controller-manager has written the cluster id of `cluster`.
pub(crate) async fn ready(cluster: &Cluster) {
    let client = cluster.client();
    liqo_testenv::eventually("liqo-controller-manager ready", WAIT, || {
        let client = client.clone();
        async move {
            liqo_auth::bootstrap::read_cluster_id(&client, "liqo")
                .await
                .ok()
        }
    })
    .await;
}

/// Runs liqoctl with the local kubeconfig of `local` and `args`; returns its output.
pub(crate) fn liqoctl(local: &Cluster, args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liqoctl"))
        .arg("--kubeconfig")
        .arg(local.kubeconfig_path())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    eprintln!(
        "$ liqoctl {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            debug_dumps(&text).is_empty(),
            "liqoctl {args:?} printed a Rust Debug dump: {text}"
        );
    }
    out
}

/// The Rust `Debug` renderings found in a text meant for people (`Some(`, `{ type_:`,
/// `Status {`).
pub(crate) fn debug_dumps(text: &str) -> Vec<&'static str> {
    ["Some(", "{ type_:", "Status {", "ErrorResponse {"]
        .into_iter()
        .filter(|p| text.contains(p))
        .collect()
}

/// Asserts that no status of a Liqo resource and no Event on `cluster` contains a Rust
/// `Debug` dump.
pub(crate) async fn assert_no_debug_dumps(cluster: &Cluster) {
    use liqo_core::api::authentication::v1beta1::*;
    use liqo_core::api::core::v1beta1::ForeignCluster;
    use liqo_core::api::offloading::v1beta1::*;
    async fn statuses<K>(cluster: &Cluster) -> Vec<String>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        K: serde::Serialize,
    {
        Api::<K>::all(cluster.client())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap()["status"].to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
    let mut texts = Vec::new();
    texts.extend(statuses::<ForeignCluster>(cluster).await);
    texts.extend(statuses::<Tenant>(cluster).await);
    texts.extend(statuses::<ResourceSlice>(cluster).await);
    texts.extend(statuses::<VirtualNode>(cluster).await);
    texts.extend(statuses::<NamespaceOffloading>(cluster).await);
    texts.extend(statuses::<NamespaceMap>(cluster).await);
    texts.extend(statuses::<ShadowPod>(cluster).await);
    texts.extend(statuses::<k8s_openapi::api::core::v1::Pod>(cluster).await);
    let events = Api::<k8s_openapi::api::core::v1::Event>::all(cluster.client())
        .list(&ListParams::default())
        .await
        .unwrap();
    texts.extend(events.items.into_iter().filter_map(|e| e.message));
    for text in texts {
        assert!(
            debug_dumps(&text).is_empty(),
            "a status or Event message on {} has a Rust Debug dump: {text}",
            cluster.name()
        );
    }
}

/// Runs liqoctl and asserts success; returns stdout.
pub(crate) fn liqoctl_ok(local: &Cluster, args: &[&str]) -> String {
    let out = liqoctl(local, args);
    assert!(out.status.success(), "liqoctl {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// `liqoctl peer` from `consumer` to `provider` without networking.
pub(crate) fn peer(consumer: &Cluster, provider: &Cluster, extra: &[&str]) -> Output {
    let remote = provider.kubeconfig_path().display().to_string();
    let mut args = vec![
        "peer",
        "--remote-kubeconfig",
        &remote,
        "--skip-networking",
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    liqoctl(consumer, &args)
}

/// Names of the objects of kind K in `ns` (all namespaces if None).
pub(crate) async fn names<K>(cluster: &Cluster, ns: Option<&str>) -> Vec<String>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all_with(cluster.client(), &());
    let mut v: Vec<String> = api
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o.meta().namespace.clone().unwrap_or_default(),
                        o.meta().name.clone().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(ns) = ns {
        v.retain(|n| n.starts_with(&format!("{ns}/")));
    }
    v.sort();
    v
}

/// Every Liqo resource (all CRD kinds of the peering flow) and tenant namespace on a cluster.
pub(crate) async fn liqo_leftovers(cluster: &Cluster) -> Vec<String> {
    use liqo_core::api::authentication::v1beta1::*;
    use liqo_core::api::core::v1beta1::ForeignCluster;
    use liqo_core::api::networking::v1beta1::*;
    use liqo_core::api::offloading::v1beta1::*;
    let mut out = Vec::new();
    for (kind, list) in [
        ("Tenant", names::<Tenant>(cluster, None).await),
        ("Identity", names::<Identity>(cluster, None).await),
        ("ResourceSlice", names::<ResourceSlice>(cluster, None).await),
        ("Renew", names::<Renew>(cluster, None).await),
        (
            "ForeignCluster",
            names::<ForeignCluster>(cluster, None).await,
        ),
        ("VirtualNode", names::<VirtualNode>(cluster, None).await),
        ("Quota", names::<Quota>(cluster, None).await),
        ("NamespaceMap", names::<NamespaceMap>(cluster, None).await),
        ("Configuration", names::<Configuration>(cluster, None).await),
        ("GatewayServer", names::<GatewayServer>(cluster, None).await),
        ("GatewayClient", names::<GatewayClient>(cluster, None).await),
        ("PublicKey", names::<PublicKey>(cluster, None).await),
    ] {
        out.extend(list.into_iter().map(|n| format!("{kind} {n}")));
    }
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::all(cluster.client())
        .list(&ListParams::default().labels("liqo.io/remote-cluster-id"))
        .await
        .unwrap();
    out.extend(
        secrets
            .items
            .iter()
            .map(|s| format!("Secret {}", s.metadata.name.clone().unwrap_or_default())),
    );
    let csrs =
        Api::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>::all(cluster.client())
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=liqo"))
            .await
            .unwrap();
    out.extend(
        csrs.items
            .iter()
            .map(|s| format!("CSR {}", s.metadata.name.clone().unwrap_or_default())),
    );
    let bindings = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::all(cluster.client())
        .list(&ListParams::default().labels("liqo.io/remote-cluster-id"))
        .await
        .unwrap();
    out.extend(bindings.items.iter().map(|s| {
        format!(
            "RoleBinding {}",
            s.metadata.name.clone().unwrap_or_default()
        )
    }));
    out
}

/// Tenant namespaces on a cluster.
pub(crate) async fn tenant_namespaces(cluster: &Cluster) -> Vec<String> {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client())
        .list(&ListParams::default().labels("liqo.io/tenant-namespace=true"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name)
        .collect()
}

pub(crate) const WAIT: Duration = Duration::from_secs(60);
