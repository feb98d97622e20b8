//! The three offloading tutorials of the Liqo documentation ("Quick start", "Offloading with
//! policies", "Offloading a service") on real control planes with kwok nodes, every Liqo
//! component a real process: liqo-controller-manager on each cluster (it starts one
//! liqo-virtual-kubelet per VirtualNode on the consumer), `liqoctl peer` and `liqoctl offload
//! namespace` as a user runs them.
//!
//! The tests start two or three clusters each: they take a lock so that they run one at a
//! time on a small machine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::await_holding_lock // the lock only serializes the tests of this file
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt as _};
use liqo_core::api::offloading::v1beta1::{NAMESPACE_OFFLOADING_NAME, NamespaceOffloading};
use liqo_testenv::{Cluster, eventually};
use support::*;

/// Serializes the tests of this file (each starts several clusters).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// `endpointslice.kubernetes.io/managed-by` of the slices kube-controller-manager makes.
const K8S_SLICES: &str = "endpointslice-controller.k8s.io";
/// `endpointslice.kubernetes.io/managed-by` of the slices materialized from a reflection.
const REFLECTED_SLICES: &str = "endpointslice.reflection.liqo.io";

fn object<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).unwrap()
}

/// The addresses of the EndpointSlices of `service` in `ns`, each with the slice's
/// `endpointslice.kubernetes.io/managed-by`.
async fn endpoints(cluster: &Cluster, ns: &str, service: &str) -> BTreeSet<(String, String)> {
    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client(), ns);
    let Ok(list) = slices
        .list(&ListParams::default().labels(&format!("{SERVICE_NAME}={service}")))
        .await
    else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for s in list.items {
        let by = s.labels().get(MANAGED_BY).cloned().unwrap_or_default();
        for e in s.endpoints.iter().flatten() {
            for a in &e.addresses {
                out.insert((a.clone(), by.clone()));
            }
        }
    }
    out
}

/// Polls `get` until it returns `want`; panics with the last value after [`WAIT`].
async fn settle<T, F, Fut>(what: &str, want: &T, mut get: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let start = std::time::Instant::now();
    loop {
        let got = get().await;
        if &got == want {
            return;
        }
        assert!(start.elapsed() < WAIT, "{what}: got {got:?}, want {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Waits until pod `name` runs on `node`; returns its IP.
async fn running_on(pods: &Api<Pod>, name: &str, node: &str) -> String {
    eventually(&format!("pod {name} Running on {node}"), WAIT, || async {
        let p = pods.get(name).await.ok()?;
        let on = p.spec.as_ref()?.node_name.as_deref() == Some(node);
        let status = p.status?;
        (on && status.phase.as_deref() == Some("Running"))
            .then_some(status.pod_ip)
            .flatten()
    })
    .await
}

/// The status of NamespaceOffloading `offloading` in `ns` as JSON.
async fn offloading_status(cluster: &Cluster, ns: &str) -> serde_json::Value {
    let api: Api<NamespaceOffloading> = Api::namespaced(cluster.client(), ns);
    let o = api.get(NAMESPACE_OFFLOADING_NAME).await.unwrap();
    serde_json::to_value(o.status).unwrap()
}

/// Starts liqo-controller-manager on every cluster (`(cluster, id, extra flags)`), peers the
/// first with the others and waits for the virtual nodes.
async fn peered(setup: &[(&Cluster, &str, &[&str])]) -> Vec<liqo_testenv::Daemon> {
    let managers: Vec<_> = setup
        .iter()
        .map(|(c, id, extra)| manager(c, id, extra))
        .collect();
    for (c, _, _) in setup {
        ready(c).await;
    }
    let consumer = setup[0].0;
    for (provider, id, _) in &setup[1..] {
        let out = peer(consumer, provider, &[]);
        assert!(out.status.success(), "liqoctl peer with {id} failed");
        virtual_node_ready(consumer, id).await;
    }
    managers
}

/// Quick start: `liqoctl offload namespace liqo-demo` with the defaults (LocalAndRemote,
/// DefaultName), the hello-world manifest (nginx-local forced on a physical node, nginx-remote
/// on a virtual node, Service liqo-demo selecting both): on the consumer the Service's
/// EndpointSlices list both pods; on the provider the Service is reflected in the twin
/// namespace and its EndpointSlices list both too: the remote pod natively (the provider's
/// EndpointSlice controller), the local one through the reflection (the virtual kubelet's
/// ShadowEndpointSlice, materialized by the provider's controller-manager).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_service_has_endpoints_in_both_clusters() {
    let _serial = serial();
    build_virtual_kubelet();
    let clusters = clusters(&["ltu-rome", "ltu-milan"]).await;
    let (rome, milan) = (&clusters[0], &clusters[1]);
    let _managers = peered(&[(rome, "rome", &[]), (milan, "milan", &[])]).await;

    rome.create_namespace("liqo-demo").await.unwrap();
    let out = liqoctl_ok(rome, &["offload", "namespace", "liqo-demo"]);
    assert!(out.contains("✔ remote namespaces ready"), "{out}");
    let status = offloading_status(rome, "liqo-demo").await;
    let twin = status["remoteNamespaceName"].as_str().unwrap().to_owned();
    assert_ne!(twin, "liqo-demo", "DefaultName gives the twin another name");

    // manifests/hello-world.yaml of the tutorial.
    let pods: Api<Pod> = Api::namespaced(rome.client(), "liqo-demo");
    for (name, op) in [("nginx-local", "NotIn"), ("nginx-remote", "In")] {
        let pod: Pod = object(serde_json::json!({
            "metadata": {"name": name, "labels": {"app": "liqo-demo"}},
            "spec": {
                "containers": [{"name": "nginx", "image": "nginxdemos/hello",
                    "ports": [{"name": "web", "containerPort": 80}]}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{
                        "key": "liqo.io/type", "operator": op, "values": ["virtual-node"]}]}]}}},
            },
        }));
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let svc: Service = object(serde_json::json!({
        "metadata": {"name": "liqo-demo"},
        "spec": {"selector": {"app": "liqo-demo"},
            "ports": [{"name": "web", "port": 80, "targetPort": "web"}]},
    }));
    let services: Api<Service> = Api::namespaced(rome.client(), "liqo-demo");
    services.create(&PostParams::default(), &svc).await.unwrap();

    let local_ip = running_on(&pods, "nginx-local", "ltu-rome-node-0").await;
    let remote_ip = running_on(&pods, "nginx-remote", "milan").await;
    let milan_pods: Api<Pod> = Api::namespaced(milan.client(), &twin);
    let native_ip = running_on(&milan_pods, "nginx-remote", "ltu-milan-node-0").await;
    eprintln!("nginx-local {local_ip}, nginx-remote {remote_ip} (on milan: {native_ip})");

    // Consumer: `kubectl get endpointslices -n liqo-demo` lists both pods.
    let want = BTreeSet::from([
        (local_ip.clone(), K8S_SLICES.to_owned()),
        (remote_ip.clone(), K8S_SLICES.to_owned()),
    ]);
    settle("endpoints of liqo-demo on rome", &want, || {
        endpoints(rome, "liqo-demo", "liqo-demo")
    })
    .await;

    // Provider: the Service reflected in the twin namespace, with its own cluster IP.
    let remote_svc: Api<Service> = Api::namespaced(milan.client(), &twin);
    let reflected = eventually("Service liqo-demo reflected on milan", WAIT, || async {
        remote_svc.get_opt("liqo-demo").await.ok()?
    })
    .await;
    let spec = reflected.spec.unwrap();
    assert_eq!(
        spec.selector,
        Some(BTreeMap::from([("app".into(), "liqo-demo".into())]))
    );
    let local_cluster_ip = services
        .get("liqo-demo")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip;
    assert!(spec.cluster_ip.is_some());
    assert_ne!(spec.cluster_ip, local_cluster_ip, "milan allocates its own");

    // ... and its EndpointSlices: the pod running on milan natively, the pod of rome through
    // the reflection (no networking: addresses are not remapped).
    let want = BTreeSet::from([
        (native_ip.clone(), K8S_SLICES.to_owned()),
        (local_ip.clone(), REFLECTED_SLICES.to_owned()),
    ]);
    settle("endpoints of liqo-demo on milan", &want, || {
        endpoints(milan, &twin, "liqo-demo")
    })
    .await;
}

/// Offloading with policies: venice peers with florence (`--cluster-labels
/// topology.liqo.io/region=center`) and naples (`region=south`); the virtual nodes carry the
/// labels; liqo-demo offloaded with `--selector 'topology.liqo.io/region=south'` exists only on
/// naples, the NamespaceOffloading status says why; app-south (affinity region=south) runs on
/// naples, app-center (affinity region=center) stays Pending. Restarted with another label,
/// naples' controller-manager publishes it and the virtual node gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloading_with_policies_selects_clusters_by_their_labels() {
    let _serial = serial();
    build_virtual_kubelet();
    let clusters = clusters(&["ltu-venice", "ltu-florence", "ltu-naples"]).await;
    let (venice, florence, naples) = (&clusters[0], &clusters[1], &clusters[2]);
    let mut managers = peered(&[
        (
            venice,
            "venice",
            &["--cluster-labels", "topology.liqo.io/region=north"],
        ),
        (
            florence,
            "florence",
            &["--cluster-labels", "topology.liqo.io/region=center"],
        ),
        (
            naples,
            "naples",
            &["--cluster-labels", "topology.liqo.io/region=south"],
        ),
    ])
    .await;

    // `kubectl get node --selector=liqo.io/type=virtual-node --show-labels`
    for (node, region) in [("florence", "center"), ("naples", "south")] {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(venice.client());
        eventually(
            &format!("virtual node {node} labelled region={region}"),
            WAIT,
            || async {
                let n = nodes.get(node).await.ok()?;
                let l = n.labels();
                (l.get("topology.liqo.io/region").map(String::as_str) == Some(region)
                    && l.get("liqo.io/type").map(String::as_str) == Some("virtual-node"))
                .then_some(())
            },
        )
        .await;
    }
    // `liqoctl info peer` shows the provider's cluster labels, `liqoctl info` on the provider
    // its own.
    let info = liqoctl_ok(venice, &["info", "peer", "naples"]);
    assert!(
        info.contains("CLUSTER LABELS") && info.contains("topology.liqo.io/region=south"),
        "{info}"
    );
    let own = liqoctl_ok(naples, &["info"]);
    assert!(
        own.contains("labels:      topology.liqo.io/region=south"),
        "{own}"
    );
    let consumer = liqoctl_ok(venice, &["info"]);
    assert!(
        consumer.contains("labels:      topology.liqo.io/region=north\n"),
        "{consumer}"
    );

    venice.create_namespace("liqo-demo").await.unwrap();
    let out = liqoctl_ok(
        venice,
        &[
            "offload",
            "namespace",
            "liqo-demo",
            "--namespace-mapping-strategy",
            "EnforceSameName",
            "--pod-offloading-strategy",
            "LocalAndRemote",
            "--selector",
            "topology.liqo.io/region=south",
        ],
    );
    assert!(out.contains("✔ remote namespaces ready"), "{out}");

    // `kubectl get namespaceoffloadings offloading -n liqo-demo -o yaml`
    let status = offloading_status(venice, "liqo-demo").await;
    assert_eq!(status["offloadingPhase"], "Ready", "{status:#}");
    assert_eq!(status["remoteNamespaceName"], "liqo-demo", "{status:#}");
    let conditions = &status["remoteNamespacesConditions"];
    let find = |cluster: &str, type_: &str| {
        conditions[cluster]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or_else(|| panic!("no {type_} condition for {cluster}: {status:#}"))
    };
    let f = find("florence", "OffloadingRequired");
    assert_eq!(
        (&f["status"], &f["reason"]),
        (&"False".into(), &"ClusterNotSelected".into())
    );
    let n = find("naples", "OffloadingRequired");
    assert_eq!(
        (&n["status"], &n["reason"]),
        (&"True".into(), &"ClusterSelected".into())
    );
    let n = find("naples", "Ready");
    assert_eq!(
        (&n["status"], &n["reason"]),
        (&"True".into(), &"NamespaceCreated".into())
    );

    // `kubectl get namespaces liqo-demo` on naples and florence.
    let on_naples: Api<Namespace> = Api::all(naples.client());
    assert!(on_naples.get_opt("liqo-demo").await.unwrap().is_some());
    let on_florence: Api<Namespace> = Api::all(florence.client());
    assert!(
        on_florence.get_opt("liqo-demo").await.unwrap().is_none(),
        "florence was not selected"
    );

    // manifests/deploy.yaml: app-south and app-center.
    let deployments: Api<Deployment> = Api::namespaced(venice.client(), "liqo-demo");
    for (name, region) in [("app-south", "south"), ("app-center", "center")] {
        let d: Deployment = object(serde_json::json!({
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": "nginx", "image": "nginx"}],
                        "affinity": {"nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [{"matchExpressions": [{
                                    "key": "topology.liqo.io/region", "operator": "In",
                                    "values": [region]}]}]}}},
                    },
                },
            },
        }));
        deployments
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }

    // `kubectl get pod -n liqo-demo -o wide`
    let pods: Api<Pod> = Api::namespaced(venice.client(), "liqo-demo");
    let of = |app: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        }
    };
    let south = eventually("app-south Running on naples", WAIT, || async {
        let p = of("app-south").await?;
        let node = p.spec.as_ref()?.node_name.clone()?;
        (node == "naples" && p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    let center = eventually("app-center unschedulable", WAIT, || async {
        let p = of("app-center").await?;
        let unschedulable = p.status.as_ref()?.conditions.as_ref()?.iter().any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        unschedulable.then_some(p)
    })
    .await;
    assert_eq!(
        center.status.unwrap().phase.as_deref(),
        Some("Pending"),
        "app-center"
    );
    assert!(center.spec.unwrap().node_name.is_none());

    // The pod of app-south runs on naples' own node; nothing of liqo-demo on florence.
    let naples_pods: Api<Pod> = Api::namespaced(naples.client(), "liqo-demo");
    running_on(&naples_pods, &south.name_any(), "ltu-naples-node-0").await;
    let florence_pods: Api<Pod> = Api::all(florence.client());
    let leaked: Vec<String> = florence_pods
        .list(&ListParams::default().labels("app in (app-south,app-center)"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert!(leaked.is_empty(), "pods on florence: {leaked:?}");

    // naples' controller-manager restarted with one more label: the virtual node gets it.
    managers[2].kill();
    managers[2] = manager(
        naples,
        "naples",
        &[
            "--cluster-labels",
            "topology.liqo.io/region=south,tier=gold",
        ],
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(venice.client());
    eventually("virtual node naples labelled tier=gold", WAIT, || async {
        let n = nodes.get("naples").await.ok()?;
        (n.labels().get("tier").map(String::as_str) == Some("gold")).then_some(())
    })
    .await;
    let own = liqoctl_ok(naples, &["info"]);
    assert!(
        own.contains("labels:      tier=gold,topology.liqo.io/region=south"),
        "{own}"
    );

    // And restarted without it: the label leaves the virtual node, the region stays.
    managers[2].kill();
    managers[2] = manager(
        naples,
        "naples",
        &["--cluster-labels", "topology.liqo.io/region=south"],
    );
    eventually(
        "label tier removed from virtual node naples",
        WAIT,
        || async {
            let n = nodes.get("naples").await.ok()?;
            let labels = n.labels();
            (!labels.contains_key("tier")
                && labels.get("topology.liqo.io/region").map(String::as_str) == Some("south"))
            .then_some(())
        },
    )
    .await;
    let own = liqoctl_ok(naples, &["info"]);
    assert!(
        own.contains("labels:      topology.liqo.io/region=south\n"),
        "{own}"
    );
}

/// Offloading a service: the flights application deployed in london, liqo-demo offloaded with
/// `--pod-offloading-strategy Local`: the pods stay on london's node, the Service is reflected
/// in newyork (own cluster IP) with EndpointSlices listing london's pods, and newyork runs no
/// pod of liqo-demo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloading_a_service_reflects_it_and_keeps_the_pods_local() {
    let _serial = serial();
    build_virtual_kubelet();
    let clusters = clusters(&["ltu-london", "ltu-newyork"]).await;
    let (london, newyork) = (&clusters[0], &clusters[1]);
    let _managers = peered(&[(london, "london", &[]), (newyork, "newyork", &[])]).await;

    // manifests/app.yaml, applied before offloading as in the tutorial.
    london.create_namespace("liqo-demo").await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(london.client(), "liqo-demo");
    let d: Deployment = object(serde_json::json!({
        "metadata": {"name": "flights-service"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"run": "flights-service"}},
            "template": {
                "metadata": {"labels": {"run": "flights-service"}},
                "spec": {"containers": [{"name": "flights-service",
                    "image": "ghcr.io/liqotech/flights-service",
                    "ports": [{"containerPort": 7999}]}]},
            },
        },
    }));
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(london.client(), "liqo-demo");
    let svc: Service = object(serde_json::json!({
        "metadata": {"name": "flights-service", "labels": {"run": "flights-service"}},
        "spec": {"selector": {"run": "flights-service"},
            "ports": [{"port": 7999, "targetPort": 7999, "protocol": "TCP"}]},
    }));
    services.create(&PostParams::default(), &svc).await.unwrap();

    let out = liqoctl_ok(
        london,
        &[
            "offload",
            "namespace",
            "liqo-demo",
            "--namespace-mapping-strategy",
            "EnforceSameName",
            "--pod-offloading-strategy",
            "Local",
        ],
    );
    assert!(out.contains("✔ remote namespaces ready"), "{out}");

    // A pod created after the offloading stays local as well (the webhook keeps it off the
    // virtual node).
    deployments
        .patch(
            "flights-service",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(london.client(), "liqo-demo");
    let ips = eventually("3 flights-service pods Running in london", WAIT, || async {
        let list = pods
            .list(&ListParams::default().labels("run=flights-service"))
            .await
            .ok()?;
        let running: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        if running.len() != 3 {
            return None;
        }
        for p in &running {
            let node = p.spec.as_ref()?.node_name.as_deref()?;
            assert_eq!(node, "ltu-london-node-0", "{} left london", p.name_any());
        }
        running
            .iter()
            .map(|p| p.status.as_ref()?.pod_ip.clone())
            .collect::<Option<BTreeSet<String>>>()
    })
    .await;

    // `kubectl get services --namespace liqo-demo --kubeconfig $KUBECONFIG_NEWYORK`
    let remote_svc: Api<Service> = Api::namespaced(newyork.client(), "liqo-demo");
    let reflected = eventually("flights-service reflected in newyork", WAIT, || async {
        remote_svc.get_opt("flights-service").await.ok()?
    })
    .await;
    let spec = reflected.spec.unwrap();
    assert_eq!(
        spec.selector,
        Some(BTreeMap::from([("run".into(), "flights-service".into())]))
    );
    assert_eq!(spec.ports.unwrap()[0].port, 7999);
    let london_ip = services
        .get("flights-service")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip;
    assert!(spec.cluster_ip.is_some());
    assert_ne!(spec.cluster_ip, london_ip, "newyork allocates its own");

    // Its endpoints are london's pods, through the reflection.
    let want: BTreeSet<(String, String)> = ips
        .iter()
        .map(|ip| (ip.clone(), REFLECTED_SLICES.to_owned()))
        .collect();
    settle("endpoints of flights-service in newyork", &want, || {
        endpoints(newyork, "liqo-demo", "flights-service")
    })
    .await;

    // `kubectl get pods --namespace liqo-demo --kubeconfig $KUBECONFIG_NEWYORK`: none.
    let remote_pods: Api<Pod> = Api::namespaced(newyork.client(), "liqo-demo");
    assert!(
        remote_pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no application pod in newyork"
    );
}

/// `--cluster-labels` without `=`: liqo-controller-manager refuses to start and says why.
#[test]
fn controller_manager_refuses_malformed_cluster_labels() {
    let out = std::process::Command::new(controller_manager())
        .args(["--cluster-id", "naples", "--cluster-labels", "region"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--cluster-labels")
            && stderr.contains("invalid cluster label \"region\": missing '='"),
        "{stderr}"
    );
}
