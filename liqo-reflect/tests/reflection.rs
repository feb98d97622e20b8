//! The reflection engine on two real control planes (rome reflects into milan): every kind
//! follows local creates, updates and deletes with its documented mutations; objects it does
//! not own are never touched; a 60-second outage of the remote API server loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Secret, Service},
    events::v1::Event,
    networking::v1::Ingress,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use liqo_core::ids::NamespacePair;
use liqo_reflect::{Clusters, ReflectionManager};
use liqo_testenv::{Cluster, ClusterConfig, Component, eventually};
use serde_json::json;

const LOCAL_NS: &str = "demo";
const REMOTE_NS: &str = "demo-rome";

async fn setup(rome: &str, milan: &str) -> (Cluster, Cluster, ReflectionManager) {
    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new(rome).nodes(0),
        ClusterConfig::new(milan).nodes(0),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    rome.create_namespace(LOCAL_NS).await.unwrap();
    milan.create_namespace(REMOTE_NS).await.unwrap();
    let manager = ReflectionManager::builder(Clusters {
        local: rome.client(),
        remote: milan.client(),
        local_id: "rome".parse().unwrap(),
        remote_id: "milan".parse().unwrap(),
    })
    .with_default_reflectors()
    .build();
    manager
        .start_namespace(&NamespacePair::new(LOCAL_NS, REMOTE_NS).unwrap())
        .await
        .unwrap();
    (rome, milan, manager)
}

const WAIT: Duration = Duration::from_secs(30);

fn cm(name: &str, data: &[(&str, &str)], annotations: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {"app": "demo"},
            "annotations": annotations.iter().copied().collect::<BTreeMap<_, _>>(),
        },
        "data": data.iter().copied().collect::<BTreeMap<_, _>>(),
    }))
    .unwrap()
}

fn data_of(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_follows_local_changes_with_its_mutations() {
    let (rome, milan, manager) = setup("refl-rome", "refl-milan").await;
    let (local, remote) = (rome.client(), milan.client());
    let local_cms: Api<ConfigMap> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_cms: Api<ConfigMap> = Api::namespaced(remote.clone(), REMOTE_NS);

    // ConfigMaps: create, update (add and remove keys), delete.
    local_cms
        .create(&PostParams::default(), &cm("settings", &[("a", "1")], &[]))
        .await
        .unwrap();
    let twin = eventually("the ConfigMap twin", WAIT, || async {
        remote_cms.get_opt("settings").await.unwrap()
    })
    .await;
    assert_eq!(data_of(&twin), BTreeMap::from([("a".into(), "1".into())]));
    assert_eq!(twin.labels()["offloading.liqo.io/origin"], "rome");
    assert_eq!(twin.labels()["offloading.liqo.io/destination"], "milan");
    assert_eq!(twin.labels()["app"], "demo");
    let patch = json!({"data": {"a": null, "b": "2"}});
    local_cms
        .patch("settings", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the ConfigMap update", WAIT, || async {
        let twin = remote_cms.get("settings").await.unwrap();
        (data_of(&twin) == BTreeMap::from([("b".into(), "2".into())])).then_some(())
    })
    .await;
    local_cms
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the ConfigMap deletion", WAIT, || async {
        remote_cms
            .get_opt("settings")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // The local root CA is reflected under another name, beside the remote cluster's own.
    let root = eventually("the root CA twin", WAIT, || async {
        remote_cms.get_opt("kube-root-ca.crt.rome").await.unwrap()
    })
    .await;
    let local_root = local_cms.get("kube-root-ca.crt").await.unwrap();
    assert_eq!(root.data, local_root.data);
    let remote_root = remote_cms.get("kube-root-ca.crt").await.unwrap();
    assert_ne!(
        remote_root.data, local_root.data,
        "the remote cluster's own CA is untouched"
    );
    assert!(
        !remote_root
            .labels()
            .contains_key("offloading.liqo.io/origin")
    );

    // Reflection policy: skipped objects are not reflected, and their twin goes when skipped later.
    local_cms
        .create(
            &PostParams::default(),
            &cm(
                "private",
                &[("k", "v")],
                &[("liqo.io/skip-reflection", "true")],
            ),
        )
        .await
        .unwrap();
    local_cms
        .create(
            &PostParams::default(),
            &cm("later-private", &[("k", "v")], &[]),
        )
        .await
        .unwrap();
    eventually("later-private twin", WAIT, || async {
        remote_cms.get_opt("later-private").await.unwrap()
    })
    .await;
    let skip = json!({"metadata": {"annotations": {"liqo.io/skip-reflection": "true"}}});
    local_cms
        .patch(
            "later-private",
            &PatchParams::default(),
            &Patch::Merge(&skip),
        )
        .await
        .unwrap();
    eventually("later-private twin to go", WAIT, || async {
        remote_cms
            .get_opt("later-private")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(remote_cms.get_opt("private").await.unwrap().is_none());

    // An object the engine does not own is never overwritten nor deleted; the local object gets
    // a FailedReflection Event.
    remote_cms
        .create(
            &PostParams::default(),
            &cm("taken", &[("owner", "milan")], &[]),
        )
        .await
        .unwrap();
    local_cms
        .create(
            &PostParams::default(),
            &cm("taken", &[("owner", "rome")], &[]),
        )
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(local.clone(), LOCAL_NS);
    let event = eventually("a FailedReflection event", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("FailedReflection")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("taken")
            })
    })
    .await;
    assert!(
        event
            .note
            .unwrap_or_default()
            .contains("not managed by liqo")
    );
    local_cms
        .delete("taken", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let theirs = remote_cms.get("taken").await.unwrap();
    assert_eq!(
        data_of(&theirs)["owner"],
        "milan",
        "the remote object was left alone"
    );

    // Secrets, including a service-account token, which becomes Opaque remotely.
    let local_secrets: Api<Secret> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_secrets: Api<Secret> = Api::namespaced(remote.clone(), REMOTE_NS);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "type": "Opaque", "stringData": {"password": "s3cret"}
    }))
    .unwrap();
    local_secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let twin = eventually("the Secret twin", WAIT, || async {
        remote_secrets.get_opt("creds").await.unwrap()
    })
    .await;
    assert_eq!(twin.data.unwrap()["password"].0, b"s3cret");
    let rotate = json!({"stringData": {"password": "n3w"}});
    local_secrets
        .patch("creds", &PatchParams::default(), &Patch::Merge(&rotate))
        .await
        .unwrap();
    eventually("the Secret update", WAIT, || async {
        let twin = remote_secrets.get("creds").await.unwrap();
        (twin.data.unwrap()["password"].0 == b"n3w").then_some(())
    })
    .await;
    let sa_token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .unwrap();
    local_secrets
        .create(&PostParams::default(), &sa_token)
        .await
        .unwrap();
    let legacy = eventually("the token Secret twin", WAIT, || async {
        remote_secrets
            .get_opt("legacy-token")
            .await
            .unwrap()
            .filter(|s| s.data.is_some())
    })
    .await;
    assert_eq!(
        legacy.type_.as_deref(),
        Some("Opaque"),
        "token Secrets become Opaque remotely"
    );
    assert!(
        legacy.data.unwrap().contains_key("token"),
        "with the token the local cluster issued"
    );
    // The ServiceAccount reflector's token Secrets live beside the Secret twins; the Secret
    // reflector must leave them alone although no local Secret has their name.
    let token_name = liqo_reflect::serviceaccount::secret_name("default");
    let token = eventually("the default token Secret", WAIT, || async {
        remote_secrets.get_opt(&token_name).await.unwrap()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = remote_secrets.get(&token_name).await.unwrap();
    assert_eq!(
        later.uid(),
        token.uid(),
        "the token Secret is never deleted and recreated"
    );
    local_secrets
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Secret deletion", WAIT, || async {
        remote_secrets
            .get_opt("creds")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // Services: cluster IPs are the remote cluster's own, node ports are not copied unless
    // forced, headless stays headless.
    let local_svcs: Api<Service> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_svcs: Api<Service> = Api::namespaced(remote.clone(), REMOTE_NS);
    let svc = |name: &str, spec: serde_json::Value, annotations: serde_json::Value| -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": annotations}, "spec": spec}),
        )
        .unwrap()
    };
    let ports = json!([{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]);
    local_svcs
        .create(
            &PostParams::default(),
            &svc(
                "web",
                json!({"selector": {"app": "web"}, "ports": ports, "type": "NodePort"}),
                json!({}),
            ),
        )
        .await
        .unwrap();
    local_svcs
        .create(
            &PostParams::default(),
            &svc(
                "pinned",
                json!({"selector": {"app": "web"}, "ports": ports, "type": "NodePort"}),
                json!({"liqo.io/force-remote-node-port": "true"}),
            ),
        )
        .await
        .unwrap();
    local_svcs
        .create(
            &PostParams::default(),
            &svc(
                "headless",
                json!({"selector": {"app": "web"}, "ports": ports, "clusterIP": "None"}),
                json!({}),
            ),
        )
        .await
        .unwrap();
    let web = eventually("the web twin", WAIT, || async {
        remote_svcs.get_opt("web").await.unwrap()
    })
    .await;
    let web_spec = web.spec.unwrap();
    let cluster_ip: std::net::Ipv4Addr = web_spec.cluster_ip.unwrap().parse().unwrap();
    assert!(
        milan.service_cidr().contains(cluster_ip),
        "{cluster_ip} comes from milan's service CIDR"
    );
    assert_eq!(web_spec.selector.unwrap()["app"], "web");
    let pinned_local = local_svcs
        .get("pinned")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()[0]
        .node_port;
    let pinned = eventually("the pinned twin", WAIT, || async {
        remote_svcs.get_opt("pinned").await.unwrap()
    })
    .await;
    assert_eq!(
        pinned.spec.unwrap().ports.unwrap()[0].node_port,
        pinned_local,
        "forced node port kept"
    );
    let headless = eventually("the headless twin", WAIT, || async {
        remote_svcs.get_opt("headless").await.unwrap()
    })
    .await;
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    let reselect = json!({"spec": {"selector": {"app": "web-v2"}}});
    local_svcs
        .patch("web", &PatchParams::default(), &Patch::Merge(&reselect))
        .await
        .unwrap();
    eventually("the Service update", WAIT, || async {
        let twin = remote_svcs.get("web").await.unwrap();
        (twin.spec.unwrap().selector.unwrap()["app"] == "web-v2").then_some(())
    })
    .await;
    local_svcs
        .delete("headless", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Service deletion", WAIT, || async {
        remote_svcs
            .get_opt("headless")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // Ingresses: the ingress class is the remote cluster's business.
    let local_ing: Api<Ingress> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_ing: Api<Ingress> = Api::namespaced(remote.clone(), REMOTE_NS);
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "front"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "demo.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]}
    }))
    .unwrap();
    local_ing
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    let twin = eventually("the Ingress twin", WAIT, || async {
        remote_ing.get_opt("front").await.unwrap()
    })
    .await;
    let spec = twin.spec.unwrap();
    assert_eq!(spec.ingress_class_name, None);
    assert_eq!(
        spec.rules.unwrap()[0].host.as_deref(),
        Some("demo.example.com")
    );
    // The remote ingress controller publishes an address: it shows on the local Ingress.
    let published = json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}});
    remote_ing
        .patch_status("front", &PatchParams::default(), &Patch::Merge(&published))
        .await
        .unwrap();
    eventually("the address on the local Ingress", WAIT, || async {
        let local = local_ing.get("front").await.unwrap();
        let ingress = local.status?.load_balancer?.ingress?;
        (ingress[0].ip.as_deref() == Some("203.0.113.10")).then_some(())
    })
    .await;
    let rehost = json!({"spec": {"rules": [{"host": "v2.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
    ]}}]}});
    local_ing
        .patch("front", &PatchParams::default(), &Patch::Merge(&rehost))
        .await
        .unwrap();
    eventually("the Ingress update", WAIT, || async {
        let twin = remote_ing.get("front").await.unwrap();
        (twin.spec.unwrap().rules.unwrap()[0].host.as_deref() == Some("v2.example.com"))
            .then_some(())
    })
    .await;
    local_ing
        .delete("front", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Ingress deletion", WAIT, || async {
        remote_ing
            .get_opt("front")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    let metrics = manager.metrics().render();
    for reflector in ["configmaps", "secrets", "services", "ingresses"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "liqo_reflection_items_total{{reflector=\"{reflector}\"}}"
                ))
            })
            .unwrap();
        let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count > 0, "{line}");
    }
}

/// Owned ConfigMap twins in the remote namespace, with their data.
async fn owned_twins(remote: &Api<ConfigMap>) -> BTreeMap<String, BTreeMap<String, String>> {
    remote
        .list(&ListParams::default().labels("offloading.liqo.io/origin=rome"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| !c.name_any().starts_with("kube-root-ca.crt"))
        .map(|c| (c.name_any(), data_of(&c)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_outage_loses_nothing() {
    let (rome, mut milan, _manager) = setup("outage-rome", "outage-milan").await;
    let local_cms: Api<ConfigMap> = Api::namespaced(rome.client(), LOCAL_NS);
    let remote_cms: Api<ConfigMap> = Api::namespaced(milan.client(), REMOTE_NS);
    for name in ["kept", "updated", "deleted"] {
        local_cms
            .create(&PostParams::default(), &cm(name, &[("v", "1")], &[]))
            .await
            .unwrap();
    }
    eventually("the first twins", WAIT, || async {
        (owned_twins(&remote_cms).await.len() == 3).then_some(())
    })
    .await;

    let outage = std::env::var("LIQO_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    milan.stop_component(Component::ApiServer);
    let patch = json!({"data": {"v": "2"}});
    local_cms
        .patch("updated", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    local_cms
        .delete("deleted", &DeleteParams::default())
        .await
        .unwrap();
    for i in 0..5 {
        local_cms
            .create(
                &PostParams::default(),
                &cm(&format!("new-{i}"), &[("v", "1")], &[]),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(outage)).await;
    milan.start_component(Component::ApiServer).await.unwrap();

    let expected: BTreeSet<String> = [
        "kept", "updated", "new-0", "new-1", "new-2", "new-3", "new-4",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let twins = eventually(
        "convergence after the outage",
        Duration::from_secs(90),
        || async {
            let twins = owned_twins(&remote_cms).await;
            (twins.keys().cloned().collect::<BTreeSet<_>>() == expected
                && twins["updated"]["v"] == "2")
                .then_some(twins)
        },
    )
    .await;
    assert_eq!(twins.len(), 7, "no duplicates, nothing lost: {twins:?}");
}

/// A Service with pods in both clusters: rome has two local pods and one on milan's virtual
/// node (whose IP is how rome sees the pod running in milan); milan runs that pod. After
/// reflection both sides list all three endpoints, milan seeing rome's pods at their remapped
/// addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slices_end_up_complete_on_both_sides() {
    use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
    use liqo_core::api::offloading::v1beta1::ShadowEndpointSlice;
    use liqo_ipam::remap::{Mapping, RemoteCidrs};
    use liqo_reflect::forge::{EndpointSliceForge, RemoteNodes, ShadowEndpointSliceForge};

    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new("eps-rome").nodes(2),
        ClusterConfig::new("eps-milan").nodes(1),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    milan.install_crds(liqo_core::api::crds()).await.unwrap();
    rome.create_namespace(LOCAL_NS).await.unwrap();
    milan.create_namespace(REMOTE_NS).await.unwrap();

    // milan's virtual node in rome, simulated by a kwok node: its pods get IPs from the range
    // rome uses to reach milan's pods.
    let vnode: Node = serde_json::from_value(json!({
        "metadata": {"name": "liqo-milan", "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": "milan"}},
        "spec": {"podCIDR": "10.250.0.0/24"},
        "status": {"capacity": {"cpu": "8", "memory": "8Gi", "pods": "10"},
                   "allocatable": {"cpu": "8", "memory": "8Gi", "pods": "10"},
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "v1.36.3",
                                "kubeProxyVersion": "", "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "",
                                "machineID": "", "osImage": "", "systemUUID": ""}}
    }))
    .unwrap();
    Api::<Node>::all(rome.client())
        .create(&PostParams::default(), &vnode)
        .await
        .unwrap();

    // milan sees rome's pod CIDR remapped to 10.222.0.0/16.
    let remapped: ipnetwork::IpNetwork = "10.222.0.0/16".parse().unwrap();
    let translator = RemoteCidrs {
        pod: vec![Mapping::new(rome.pod_cidr().into(), remapped).unwrap()],
        external: vec![],
    };
    let clusters = Clusters {
        local: rome.client(),
        remote: milan.client(),
        local_id: "rome".parse().unwrap(),
        remote_id: "milan".parse().unwrap(),
    };
    let remote_nodes = RemoteNodes::watch(rome.client(), &clusters.remote_id).await;
    let consumer = ReflectionManager::builder(clusters)
        .with_default_reflectors()
        .with_endpoint_slices(EndpointSliceForge::new(translator, remote_nodes))
        .build();
    consumer
        .start_namespace(&NamespacePair::new(LOCAL_NS, REMOTE_NS).unwrap())
        .await
        .unwrap();
    let provider = ReflectionManager::builder(Clusters {
        local: milan.client(),
        remote: milan.client(),
        local_id: "milan".parse().unwrap(),
        remote_id: "milan".parse().unwrap(),
    })
    .generic::<ShadowEndpointSlice, _, EndpointSlice>(
        "shadowendpointslices",
        ShadowEndpointSliceForge,
    )
    .build();
    provider
        .start_namespace(&NamespacePair::new(REMOTE_NS, REMOTE_NS).unwrap())
        .await
        .unwrap();

    // The Service and its pods.
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(rome.client(), LOCAL_NS)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let pod = |name: &str, node: &str| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]}]}
        }))
        .unwrap()
    };
    let rome_pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(rome.client(), LOCAL_NS);
    for (name, node) in [
        ("web-0", "eps-rome-node-0"),
        ("web-1", "eps-rome-node-1"),
        ("web-remote", "liqo-milan"),
    ] {
        rome_pods
            .create(&PostParams::default(), &pod(name, node))
            .await
            .unwrap();
    }
    let milan_pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(milan.client(), REMOTE_NS);
    milan_pods
        .create(
            &PostParams::default(),
            &pod("web-remote", "eps-milan-node-0"),
        )
        .await
        .unwrap();

    let addresses = |client: Client, ns: &'static str| async move {
        Api::<EndpointSlice>::namespaced(client, ns)
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .unwrap()
            .items
            .into_iter()
            .flat_map(|s| s.endpoints.unwrap_or_default())
            .flat_map(|e| e.addresses)
            .map(|a| a.parse::<std::net::Ipv4Addr>().unwrap())
            .collect::<BTreeSet<_>>()
    };
    let rome_view = eventually(
        "three endpoints in rome",
        Duration::from_secs(60),
        || async {
            let a = addresses(rome.client(), LOCAL_NS).await;
            (a.len() == 3).then_some(a)
        },
    )
    .await;
    let milan_view = eventually(
        "three endpoints in milan",
        Duration::from_secs(60),
        || async {
            let a = addresses(milan.client(), REMOTE_NS).await;
            (a.len() == 3).then_some(a)
        },
    )
    .await;
    let local_pod_ips: BTreeSet<_> = rome_view
        .iter()
        .filter(|a| rome.pod_cidr().contains(**a))
        .copied()
        .collect();
    assert_eq!(
        local_pod_ips.len(),
        2,
        "rome: two local pods plus the one on the virtual node: {rome_view:?}"
    );
    let milan_native: Vec<_> = milan_view
        .iter()
        .filter(|a| milan.pod_cidr().contains(**a))
        .collect();
    let milan_remapped: BTreeSet<_> = milan_view
        .iter()
        .filter(|a| remapped.contains(std::net::IpAddr::V4(**a)))
        .copied()
        .collect();
    assert_eq!(milan_native.len(), 1, "milan's own pod: {milan_view:?}");
    let expected: BTreeSet<_> = local_pod_ips
        .iter()
        .map(|ip| {
            let o = ip.octets();
            std::net::Ipv4Addr::new(10, 222, o[2], o[3])
        })
        .collect();
    assert_eq!(
        milan_remapped, expected,
        "rome's pods at their remapped addresses"
    );
    assert!(
        !milan_view.iter().any(|a| a.octets()[..2] == [10, 250]),
        "the pod milan runs is not duplicated"
    );

    // Update: a local pod goes, rome's slice shrinks, and milan's copy follows.
    let gone = rome_pods.get("web-1").await.unwrap();
    let gone_ip: std::net::Ipv4Addr = gone.status.unwrap().pod_ip.unwrap().parse().unwrap();
    let gone_remapped = std::net::Ipv4Addr::new(10, 222, gone_ip.octets()[2], gone_ip.octets()[3]);
    rome_pods
        .delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "milan to drop the deleted pod's endpoint",
        Duration::from_secs(60),
        || async {
            let a = addresses(milan.client(), REMOTE_NS).await;
            (a.len() == 2 && !a.contains(&gone_remapped)).then_some(())
        },
    )
    .await;
    // Delete: without the Service, its slices, their shadows and the materialized copies go.
    Api::<Service>::namespaced(rome.client(), LOCAL_NS)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let shadows: Api<ShadowEndpointSlice> = Api::namespaced(milan.client(), REMOTE_NS);
    eventually(
        "the shadows and their slices to go",
        Duration::from_secs(60),
        || async {
            let none_left = shadows
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty();
            let reflected = Api::<EndpointSlice>::namespaced(milan.client(), REMOTE_NS)
                .list(&ListParams::default().labels(
                    "endpointslice.kubernetes.io/managed-by=endpointslice.reflection.liqo.io",
                ))
                .await
                .unwrap()
                .items;
            (none_left && reflected.is_empty()).then_some(())
        },
    )
    .await;
}

/// Events about twins in the remote cluster show up on the local objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_events_are_reflected_onto_local_objects() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;

    let (rome, milan, _manager) = setup("ev-rome", "ev-milan").await;
    let local_cms: Api<ConfigMap> = Api::namespaced(rome.client(), LOCAL_NS);
    local_cms
        .create(&PostParams::default(), &cm("settings", &[("a", "1")], &[]))
        .await
        .unwrap();
    let remote_events: Api<CoreEvent> = Api::namespaced(milan.client(), REMOTE_NS);
    let event = |name: &str, kind: &str, about: &str| -> CoreEvent {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"apiVersion": "v1", "kind": kind, "name": about, "namespace": REMOTE_NS},
            "reason": "Checked", "message": format!("{about} looked at"), "type": "Normal", "count": 1,
            "firstTimestamp": "2026-11-21T10:00:00Z", "lastTimestamp": "2026-11-21T10:00:00Z",
            "source": {"component": "milan-checker"}
        }))
        .unwrap()
    };
    for (name, kind, about) in [
        ("settings.1", "ConfigMap", "settings"),
        ("root-ca.1", "ConfigMap", "kube-root-ca.crt.rome"),
        ("ghost.1", "ConfigMap", "ghost"),
        ("node.1", "Node", "whatever"),
    ] {
        remote_events
            .create(&PostParams::default(), &event(name, kind, about))
            .await
            .unwrap();
    }
    let local_events: Api<CoreEvent> = Api::namespaced(rome.client(), LOCAL_NS);
    let settings_uid = local_cms.get("settings").await.unwrap().uid();
    let twin = eventually("the event twin", WAIT, || async {
        local_events.get_opt("settings.1").await.unwrap()
    })
    .await;
    assert_eq!(
        twin.involved_object.uid, settings_uid,
        "about the local object, with its UID"
    );
    assert_eq!(twin.involved_object.namespace.as_deref(), Some(LOCAL_NS));
    assert_eq!(twin.reason.as_deref(), Some("Checked"));
    assert!(twin.message.unwrap().contains("in cluster milan"));
    let root = eventually("the root CA event", WAIT, || async {
        local_events.get_opt("root-ca.1").await.unwrap()
    })
    .await;
    assert_eq!(
        root.involved_object.name.as_deref(),
        Some("kube-root-ca.crt")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        local_events.get_opt("ghost.1").await.unwrap().is_none(),
        "no local object, no event"
    );
    assert!(
        local_events.get_opt("node.1").await.unwrap().is_none(),
        "not a reflected kind"
    );

    // Updates follow, and the twin goes with its remote event.
    let bump = json!({"count": 5, "lastTimestamp": "2026-11-21T10:05:00Z"});
    remote_events
        .patch("settings.1", &PatchParams::default(), &Patch::Merge(&bump))
        .await
        .unwrap();
    eventually("the count update", WAIT, || async {
        (local_events.get("settings.1").await.unwrap().count == Some(5)).then_some(())
    })
    .await;
    remote_events
        .delete("settings.1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the twin to go", WAIT, || async {
        local_events
            .get_opt("settings.1")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

/// Latest FailedReflection Event note about local object `name`, if any.
async fn failed_reflection(local: &Client, name: &str) -> Option<String> {
    Api::<Event>::namespaced(local.clone(), LOCAL_NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("FailedReflection")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .find_map(|e| e.note)
}

/// The remote API server rejecting a twin, or the remote namespace disappearing, is reported on
/// the local object; the engine keeps reflecting everything else and recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_twins_and_deleted_namespaces_are_reported_and_recovered() {
    use k8s_openapi::api::core::v1::ResourceQuota;

    let (rome, milan, _manager) = setup("bad-rome", "bad-milan").await;
    let (local, remote) = (rome.client(), milan.client());
    let local_cms: Api<ConfigMap> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_cms: Api<ConfigMap> = Api::namespaced(remote.clone(), REMOTE_NS);
    eventually("the root CA twin", WAIT, || async {
        remote_cms.get_opt("kube-root-ca.crt.rome").await.unwrap()
    })
    .await;

    // The provider allows only 3 ConfigMaps in the namespace: its own root CA, ours, one more.
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "few-configmaps"}, "spec": {"hard": {"count/configmaps": "3"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(remote.clone(), REMOTE_NS)
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the quota controller count
    local_cms
        .create(&PostParams::default(), &cm("fits", &[("k", "v")], &[]))
        .await
        .unwrap();
    eventually("the twin that fits", WAIT, || async {
        remote_cms.get_opt("fits").await.unwrap()
    })
    .await;
    local_cms
        .create(
            &PostParams::default(),
            &cm("over-quota", &[("k", "v")], &[]),
        )
        .await
        .unwrap();
    let note = eventually("the rejection reported", WAIT, || async {
        failed_reflection(&local, "over-quota").await
    })
    .await;
    assert!(note.contains("exceeded quota"), "{note}");
    // Other kinds keep flowing.
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "still-works"}, "stringData": {"a": "b"}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(local.clone(), LOCAL_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    eventually("other reflections continue", WAIT, || async {
        Api::<Secret>::namespaced(remote.clone(), REMOTE_NS)
            .get_opt("still-works")
            .await
            .unwrap()
    })
    .await;
    // Lifting the quota lets the retry succeed.
    Api::<ResourceQuota>::namespaced(remote.clone(), REMOTE_NS)
        .delete("few-configmaps", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the rejected twin after the quota is lifted",
        Duration::from_secs(90),
        || async { remote_cms.get_opt("over-quota").await.unwrap() },
    )
    .await;

    // The remote namespace is deleted under the engine, then comes back.
    Api::<Namespace>::all(remote.clone())
        .delete(REMOTE_NS, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the remote namespace to go",
        Duration::from_secs(60),
        || async {
            Api::<Namespace>::all(remote.clone())
                .get_opt(REMOTE_NS)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    local_cms
        .create(&PostParams::default(), &cm("orphan", &[("k", "v")], &[]))
        .await
        .unwrap();
    let note = eventually("the missing namespace reported", WAIT, || async {
        failed_reflection(&local, "orphan").await
    })
    .await;
    assert!(
        note.contains("not found") || note.contains("NotFound"),
        "{note}"
    );
    milan.create_namespace(REMOTE_NS).await.unwrap();
    let twins = eventually(
        "everything back after the namespace returns",
        Duration::from_secs(90),
        || async {
            let twins = owned_twins(&remote_cms).await;
            (twins.contains_key("orphan")
                && twins.contains_key("fits")
                && twins.contains_key("over-quota"))
            .then_some(twins)
        },
    )
    .await;
    assert_eq!(twins.len(), 3, "{twins:?}");
}
