//! Real control planes: two clusters in parallel, every Liqo CRD applied and every kind
//! round-tripped, a Deployment running on kwok nodes, and nothing left behind afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Namespace, core::v1::Pod},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PostParams,
    },
};
use liqo_testenv::{Cluster, ClusterConfig, Component};
use serde_json::{Value, json};

const MANAGER: &str = "liqo-testenv-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_crds_and_workloads() {
    let clusters = Cluster::start_all(vec![
        ClusterConfig::new("cp-rome").nodes(2),
        ClusterConfig::new("cp-milan").nodes(3),
    ])
    .await
    .expect("clusters start");
    let (rome, milan) = (&clusters[0], &clusters[1]);
    assert_ne!(
        rome.pod_cidr(),
        milan.pod_cidr(),
        "default pod CIDRs must differ"
    );
    assert_ne!(rome.service_cidr(), milan.service_cidr());
    assert!(rome.kubeconfig_path().exists());

    // Remember what must disappear when the clusters are dropped.
    let mut pids = Vec::new();
    let mut ports = Vec::new();
    for cluster in &clusters {
        pids.extend(cluster.pids().into_iter().map(|(_, pid)| pid));
        ports.push(port_of(cluster.apiserver_url()));
        assert!(cluster.log_path(Component::ApiServer).exists());
    }
    assert_eq!(pids.len(), 10, "five components per cluster");

    let samples = load_samples();
    assert!(
        samples.len() >= 27,
        "one sample per Liqo kind, got {}",
        samples.len()
    );
    let (r1, r2) = tokio::join!(
        crds_round_trip(rome, &samples),
        crds_round_trip(milan, &samples)
    );
    r1.expect("CRDs on rome");
    r2.expect("CRDs on milan");

    let (d1, d2) = tokio::join!(deployment_runs(rome), deployment_runs(milan));
    d1.expect("deployment on rome");
    d2.expect("deployment on milan");

    drop(clusters);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the cluster"
        );
    }
    for port in ports {
        assert!(
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok(),
            "port {port} still in use after the cluster stopped"
        );
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("url has a port")
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployments/samples")
}

fn load_samples() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("deployments/samples exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("sample readable");
            let value: Value = serde_yaml::from_str(&text).expect("sample is YAML");
            (p, value)
        })
        .collect()
}

/// Applies every CRD, waits until each is Established, then creates, reads, status-patches (or
/// patches, for kinds without status) and deletes one object of every kind.
async fn crds_round_trip(cluster: &Cluster, samples: &[(PathBuf, Value)]) -> anyhow::Result<()> {
    let client = cluster.client();
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = liqo_core::api::crds();
    for crd in &crds {
        crd_api
            .patch(
                &crd.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(crd),
            )
            .await
            .map_err(|e| anyhow::anyhow!("applying CRD {}: {e}", crd.name_any()))?;
    }
    for crd in &crds {
        let name = crd.name_any();
        let cond = kube::runtime::wait::conditions::is_crd_established();
        tokio::time::timeout(
            Duration::from_secs(60),
            kube::runtime::wait::await_condition(crd_api.clone(), &name, cond),
        )
        .await
        .map_err(|_| anyhow::anyhow!("CRD {name} not Established within 60 s"))??;
    }

    let by_kind: BTreeMap<(String, String), &CustomResourceDefinition> = crds
        .iter()
        .map(|c| ((c.spec.group.clone(), c.spec.names.kind.clone()), c))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (path, sample) in samples {
        let api_version = sample["apiVersion"].as_str().unwrap_or_default();
        let kind = sample["kind"].as_str().unwrap_or_default().to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let crd = by_kind
            .get(&(group.to_owned(), kind.clone()))
            .ok_or_else(|| {
                anyhow::anyhow!("{}: no CRD for {api_version} {kind}", path.display())
            })?;
        seen.insert(kind.clone());
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
        let namespace = sample["metadata"]["namespace"].as_str();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => {
                ensure_namespace(&client, ns).await?;
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            None => Api::all_with(client.clone(), &resource),
        };
        let mut object: DynamicObject = serde_json::from_value(sample.clone())?;
        let status = object.data.as_object_mut().and_then(|d| d.remove("status"));
        let name = object.name_any();
        let ctx = |step: &str| format!("{kind} {name} ({}): {step}", path.display());

        let created = api
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", ctx("create")))?;
        anyhow::ensure!(created.metadata.uid.is_some(), "{}", ctx("no uid"));
        let fetched = api
            .get(&name)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", ctx("get")))?;
        anyhow::ensure!(
            fetched.data.get("spec") == object.data.get("spec")
                || object.data.get("spec").is_none(),
            "{}: spec changed on the way: sent {:?}, got {:?}",
            ctx("get"),
            object.data.get("spec"),
            fetched.data.get("spec")
        );

        let has_status = crd
            .spec
            .versions
            .iter()
            .any(|v| v.subresources.as_ref().is_some_and(|s| s.status.is_some()));
        if has_status {
            let status =
                status.ok_or_else(|| anyhow::anyhow!("{}", ctx("sample has no status")))?;
            let patch = json!({ "status": status });
            let patched = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", ctx("status patch")))?;
            let got = api.get(&name).await?;
            anyhow::ensure!(
                contains(&got.data["status"], &status),
                "{}: status not stored: sent {status}, got {}",
                ctx("status patch"),
                got.data["status"]
            );
            anyhow::ensure!(
                patched.data.get("status").is_some(),
                "{}",
                ctx("patch result")
            );
        } else {
            let patch = json!({ "metadata": { "labels": { "liqo-testenv/round-trip": "yes" } } });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", ctx("patch")))?;
        }

        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", ctx("delete")))?;
        let gone = tokio::time::timeout(Duration::from_secs(30), async {
            while api.get_opt(&name).await.ok().flatten().is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        anyhow::ensure!(gone.is_ok(), "{}", ctx("still present 30 s after delete"));
    }
    let missing: Vec<&str> = crds
        .iter()
        .map(|c| c.spec.names.kind.as_str())
        .filter(|k| !seen.contains(*k))
        .collect();
    anyhow::ensure!(missing.is_empty(), "kinds without a sample: {missing:?}");
    Ok(())
}

/// Whether every field of `want` is in `got` with the same value (the API server may add
/// defaults, never drop what was sent).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| contains(gv, v))),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => got == want,
    }
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    api.patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&ns))
        .await?;
    Ok(())
}

/// A 10-replica Deployment reaches 10 Running pods, spread on the kwok nodes, with IPs from
/// the cluster's pod CIDR.
async fn deployment_runs(cluster: &Cluster) -> anyhow::Result<()> {
    let client = cluster.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "demo" },
        "spec": {
            "replicas": 10,
            "selector": { "matchLabels": { "app": "demo" } },
            "template": {
                "metadata": { "labels": { "app": "demo" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let selector = ListParams::default().labels("app=demo");
    let running = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if let Ok(list) = pods.list(&selector).await {
                let running: Vec<Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                            && p.metadata.deletion_timestamp.is_none()
                    })
                    .collect();
                if running.len() == 10 {
                    return running;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("{}: 10 pods not Running within 120 s", cluster.name()))?;
    let cidr = cluster.pod_cidr();
    for pod in &running {
        let status = pod
            .status
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("pod without status"))?;
        let ip: Ipv4Addr = status
            .pod_ip
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("pod {} has no IP", pod.name_any()))?
            .parse()?;
        anyhow::ensure!(cidr.contains(ip), "pod IP {ip} outside the pod CIDR {cidr}");
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        anyhow::ensure!(
            node.starts_with(&format!("{}-node-", cluster.name())),
            "pod scheduled on unexpected node {node:?}"
        );
    }
    Ok(())
}
