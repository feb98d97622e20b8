//! Peering benchmark on real control planes (JSON lines on stdout):
//!
//! - `peer_one_provider`: wall time of `liqoctl peer --skip-networking` (it returns once the
//!   ForeignCluster reports every module Established), median of several runs with an unpeer
//!   in between;
//! - `peer_three_providers`: three `liqoctl peer` started together from one consumer to three
//!   providers, until the last one is Established;
//! - baseline, same run, same API servers, before any controller runs: the raw cost of
//!   creating (and writing the status of) the same objects a peering creates, with an admin
//!   client (`*_baseline_api`);
//! - peak resident memory of the consumer's and a provider's liqo-controller-manager.
//!
//! Run: `cargo bench -p liqoctl --bench peering` (builds liqo-controller-manager first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use liqo_auth::forge;
use liqo_core::api::authentication::v1beta1::{
    AuthParams, Identity, IdentityType, ResourceSlice, Tenant,
};
use liqo_core::api::core::v1beta1::ForeignCluster;
use liqo_core::api::offloading::v1beta1::{Quota, VirtualNode};
use liqo_core::ids::ClusterId;
use liqo_testenv::{Cluster, ClusterConfig, Daemon};

fn emit(bench: &str, value: f64, unit: &str) {
    println!(r#"{{"bench": "{bench}", "value": {value:.4}, "unit": "{unit}"}}"#);
}

fn controller_manager() -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_BIN_EXE_liqoctl")).with_file_name("liqo-controller-manager");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = path.parent().is_some_and(|d| d.ends_with("release"));
    let ok = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "liqo-controller-manager"])
        .args(release.then_some("--release"))
        .status()
        .unwrap()
        .success();
    assert!(ok && path.exists());
    path
}

fn manager(cluster: &Cluster, id: &str, exe: &PathBuf) -> Daemon {
    let pod = cluster.pod_cidr().to_string();
    let svc = cluster.service_cidr().to_string();
    cluster
        .daemon(
            "liqo-controller-manager",
            exe,
            [
                "--cluster-id",
                id,
                "--pod-cidr",
                &pod,
                "--service-cidr",
                &svc,
            ],
        )
        .unwrap()
}

fn liqoctl(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_liqoctl"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn peer(consumer: &Cluster, provider: &Cluster) -> std::process::Child {
    liqoctl(&[
        "--kubeconfig",
        consumer.kubeconfig_path().to_str().unwrap(),
        "peer",
        "--remote-kubeconfig",
        provider.kubeconfig_path().to_str().unwrap(),
        "--skip-networking",
    ])
}

fn unpeer(consumer: &Cluster, provider: &Cluster) {
    let ok = liqoctl(&[
        "--kubeconfig",
        consumer.kubeconfig_path().to_str().unwrap(),
        "unpeer",
        "--remote-kubeconfig",
        provider.kubeconfig_path().to_str().unwrap(),
        "--keep-namespaces",
    ])
    .wait()
    .unwrap()
    .success();
    assert!(ok);
}

fn pp() -> PatchParams {
    PatchParams::default()
}

/// Creates, with an admin client and no controller running, what one peering creates
/// (namespaces, nonce Secrets, Tenant + status, RoleBinding, Identities + kubeconfig Secrets,
/// ResourceSlice + replica + statuses, Quota, VirtualNode, ForeignClusters), then deletes it.
/// Returns the creation time.
async fn baseline(consumer: &Cluster, provider: &Cluster, i: usize) -> Duration {
    let c_id = ClusterId::new(format!("base-c{i}")).unwrap();
    let p_id = ClusterId::new(format!("base-p{i}")).unwrap();
    let (cc, pc) = (consumer.client(), provider.client());
    let start = Instant::now();
    let mut c_ns = forge::tenant_namespace(&p_id);
    c_ns.metadata.labels = None; // keep future controllers away
    let mut p_ns = forge::tenant_namespace(&c_id);
    p_ns.metadata.labels = None;
    Api::<Namespace>::all(cc.clone())
        .create(&PostParams::default(), &c_ns)
        .await
        .unwrap();
    Api::<Namespace>::all(pc.clone())
        .create(&PostParams::default(), &p_ns)
        .await
        .unwrap();
    let cns = p_id.tenant_namespace();
    let pns = c_id.tenant_namespace();
    let nonce = liqo_auth::Nonce::generate().unwrap();
    let mut n = forge::nonce_secret(&c_id);
    n.data = Some([("nonce".into(), ByteString(nonce.as_base64().into()))].into());
    Api::<Secret>::namespaced(pc.clone(), &pns)
        .create(&PostParams::default(), &n)
        .await
        .unwrap();
    let sn = forge::signed_nonce_secret(&p_id, &nonce);
    Api::<Secret>::namespaced(cc.clone(), &cns)
        .create(&PostParams::default(), &sn)
        .await
        .unwrap();
    let keys = liqo_auth::ClusterKeys::generate().unwrap();
    let csr = liqo_auth::create_csr(&keys, &c_id).unwrap();
    let sig = liqo_auth::sign_nonce(&keys, &nonce);
    let tenant = forge::tenant(&c_id, &keys.public_key_pem(), &csr, &sig, None);
    let tenants = Api::<Tenant>::namespaced(pc.clone(), &pns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let params = AuthParams {
        ca: Some(ByteString(b"ca".to_vec())),
        signed_crt: Some(ByteString(b"crt".to_vec())),
        api_server: Some("https://x".into()),
        ..Default::default()
    };
    let st = serde_json::json!({"status": {"authParams": params}});
    tenants
        .patch_status(c_id.as_str(), &pp(), &Patch::Merge(&st))
        .await
        .unwrap();
    let rb = forge::role_binding(
        "rb",
        &pns,
        "ClusterRole",
        "liqo-remote-controlplane",
        c_id.as_str(),
        Default::default(),
    );
    Api::<RoleBinding>::namespaced(pc.clone(), &pns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
    let identities = Api::<Identity>::namespaced(cc.clone(), &cns);
    let secrets = Api::<Secret>::namespaced(cc.clone(), &cns);
    for (name, ty) in [
        ("controlplane-x", IdentityType::ControlPlane),
        ("resourceslice-x", IdentityType::ResourceSlice),
    ] {
        let id = forge::identity(name, ty, &p_id, params.clone(), &pns);
        let created = identities
            .create(&PostParams::default(), &id)
            .await
            .unwrap();
        let s = forge::kubeconfig_secret(&created, &p_id, "kubeconfig");
        secrets.create(&PostParams::default(), &s).await.unwrap();
        let st = serde_json::json!({"status": {"kubeconfigSecretRef": {"name": format!("kubeconfig-{name}")}}});
        identities
            .patch_status(name, &pp(), &Patch::Merge(&st))
            .await
            .unwrap();
    }
    let slice = forge::resource_slice("x", &p_id, Default::default(), None);
    let cslices = Api::<ResourceSlice>::namespaced(cc.clone(), &cns);
    let pslices = Api::<ResourceSlice>::namespaced(pc.clone(), &pns);
    let local = cslices
        .create(&PostParams::default(), &slice)
        .await
        .unwrap();
    let mut replica = slice.clone();
    replica.metadata.namespace = Some(pns.clone());
    let replica = pslices
        .create(&PostParams::default(), &replica)
        .await
        .unwrap();
    let st = serde_json::json!({"status": {"resources": {"cpu": "4"}, "authParams": params}});
    pslices
        .patch_status("x", &pp(), &Patch::Merge(&st))
        .await
        .unwrap();
    cslices
        .patch_status("x", &pp(), &Patch::Merge(&st))
        .await
        .unwrap();
    let q = forge::quota(
        &replica,
        "x-user",
        Default::default(),
        liqo_core::api::offloading::v1beta1::LimitsEnforcement::Soft,
    );
    Api::<Quota>::namespaced(pc.clone(), &pns)
        .create(&PostParams::default(), &q)
        .await
        .unwrap();
    let vn = forge::virtual_node(
        &local,
        &p_id,
        "kubeconfig-resourceslice-x",
        Default::default(),
    );
    Api::<VirtualNode>::namespaced(cc.clone(), &cns)
        .create(&PostParams::default(), &vn)
        .await
        .unwrap();
    for (client, peer) in [(&cc, &p_id), (&pc, &c_id)] {
        let fcs = Api::<ForeignCluster>::all(client.clone());
        fcs.create(&PostParams::default(), &forge::foreign_cluster(peer))
            .await
            .unwrap();
        let st = serde_json::json!({"status": {"role": "Provider"}});
        fcs.patch_status(peer.as_str(), &pp(), &Patch::Merge(&st))
            .await
            .unwrap();
    }
    let elapsed = start.elapsed();
    for (client, peer, ns) in [(&cc, &p_id, &cns), (&pc, &c_id, &pns)] {
        let _ = Api::<ForeignCluster>::all(client.clone())
            .delete(peer.as_str(), &DeleteParams::default())
            .await;
        let _ = Api::<Namespace>::all(client.clone())
            .delete(ns, &DeleteParams::default())
            .await;
    }
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let exe = controller_manager();
    let names = ["pbb-rome", "pbb-milan", "pbb-naples", "pbb-turin"];
    let configs = names
        .iter()
        .map(|n| ClusterConfig::new(*n).nodes(1))
        .collect();
    let clusters = Cluster::start_all(configs).await.unwrap();
    for c in &clusters {
        c.install_crds(liqo_core::api::crds()).await.unwrap();
    }
    let (consumer, providers) = (&clusters[0], &clusters[1..]);

    // Baseline first: no controller is running yet. One untimed round on every provider
    // warms up the API servers (the first request of each CRD kind is slower).
    for (i, p) in providers.iter().enumerate() {
        baseline(consumer, p, 100 + i).await;
    }
    let mut one = Vec::new();
    for i in 0..3 {
        one.push(baseline(consumer, &providers[0], i).await.as_secs_f64());
    }
    emit("peer_one_provider_baseline_api", median(one), "s");
    let start = Instant::now();
    futures::future::join_all(
        providers
            .iter()
            .enumerate()
            .map(|(i, p)| baseline(consumer, p, 10 + i)),
    )
    .await;
    emit(
        "peer_three_providers_baseline_api",
        start.elapsed().as_secs_f64(),
        "s",
    );

    let ids = ["rome", "milan", "naples", "turin"];
    let managers: Vec<Daemon> = clusters
        .iter()
        .zip(ids)
        .map(|(c, id)| manager(c, id, &exe))
        .collect();
    for c in &clusters {
        let client = c.client();
        liqo_testenv::eventually("manager ready", Duration::from_secs(60), || {
            let client = client.clone();
            async move {
                liqo_auth::bootstrap::read_cluster_id(&client, "liqo")
                    .await
                    .ok()
            }
        })
        .await;
    }

    let mut one = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        assert!(peer(consumer, &providers[0]).wait().unwrap().success());
        one.push(start.elapsed().as_secs_f64());
        unpeer(consumer, &providers[0]);
    }
    emit("peer_one_provider", median(one), "s");

    let start = Instant::now();
    let children: Vec<_> = providers.iter().map(|p| peer(consumer, p)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    emit("peer_three_providers", start.elapsed().as_secs_f64(), "s");

    let mib = |d: &Daemon| d.peak_memory_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    emit(
        "controller_manager_peak_memory_consumer_3_peers",
        mib(&managers[0]),
        "MiB",
    );
    emit(
        "controller_manager_peak_memory_provider",
        mib(&managers[1]),
        "MiB",
    );
}
