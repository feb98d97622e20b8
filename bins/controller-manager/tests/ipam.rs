//! The IPAM controllers of `liqo-controller-manager`, on a real control plane: hundreds of
//! Network and IP resources created concurrently with overlapping preferences while the
//! controller is killed (SIGKILL) and restarted; every one gets a non-overlapping allocation,
//! the same one after another restart; bad input is reported in the status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use ipnetwork::IpNetwork;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use liqo_core::api::ipam::v1alpha1::{Ip, IpSpec, Network, NetworkSpec};
use liqo_core::api::networking::v1beta1::{Cidr, IpAddress};
use liqo_testenv::{Cluster, ClusterConfig, Daemon};

const NS: &str = "liqo-tenant-peers";

fn manager(cluster: &Cluster, extra: &[&str]) -> Daemon {
    let pod_cidr = cluster.pod_cidr().to_string();
    let service_cidr = cluster.service_cidr().to_string();
    let args = [
        "--cluster-id",
        cluster.name(),
        "--pod-cidr",
        &pod_cidr,
        "--service-cidr",
        &service_cidr,
    ];
    let exe = env!("CARGO_BIN_EXE_liqo-controller-manager");
    cluster
        .daemon(
            "liqo-controller-manager",
            exe,
            args.iter().chain(extra).copied(),
        )
        .unwrap()
}

async fn setup(name: &str) -> Cluster {
    let cluster = Cluster::start(ClusterConfig::new(name).nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    Api::all(cluster.client())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    cluster
}

fn network(name: &str, cidr: &str, labels: &[(&str, &str)]) -> Network {
    let mut n = Network::new(
        name,
        NetworkSpec {
            cidr: Cidr(cidr.to_owned()),
            pre_allocated: 0,
        },
    );
    n.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    n
}

/// Every Network's allocated CIDR, by namespace/name (only those with one).
async fn allocations(cluster: &Cluster) -> BTreeMap<String, (IpNetwork, bool)> {
    let list = Api::<Network>::all(cluster.client())
        .list(&ListParams::default())
        .await
        .unwrap();
    list.items
        .iter()
        .filter_map(|n| {
            let cidr = n.status.as_ref()?.cidr.as_ref()?.as_str().parse().ok()?;
            let shared = n
                .labels()
                .get("ipam.liqo.io/network-shared")
                .is_some_and(|v| v == "true");
            Some((
                format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()),
                (cidr, shared),
            ))
        })
        .collect()
}

fn assert_no_overlap(allocs: &BTreeMap<String, (IpNetwork, bool)>) {
    let all: Vec<_> = allocs.iter().collect();
    for (i, (a, (ca, sa))) in all.iter().enumerate() {
        for (b, (cb, sb)) in &all[i + 1..] {
            if *sa && *sb {
                continue; // shared networks may coincide
            }
            let overlap = ca.contains(cb.network()) || cb.contains(ca.network());
            assert!(!overlap, "{a} ({ca}) overlaps {b} ({cb})");
        }
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_survive_controller_crashes_without_overlaps() {
    let cluster = setup("ipam-networks").await;
    let mut cm = manager(&cluster, &[]);
    let api: Api<Network> = Api::namespaced(cluster.client(), NS);

    // 200 peers' CIDRs: most of them collide with each other and with the local pod CIDR.
    let pod = cluster.pod_cidr().to_string();
    let preferences: Vec<String> = (0..200)
        .map(|i| match i % 5 {
            0 => pod.clone(),
            1 => "10.0.0.0/16".to_owned(),
            2 => "10.0.0.0/24".to_owned(),
            3 => "192.168.0.0/20".to_owned(),
            _ => format!("172.16.{}.0/24", i % 7),
        })
        .collect();
    let create = |range: std::ops::Range<usize>| {
        let api = api.clone();
        let preferences = preferences.clone();
        async move {
            stream::iter(range)
                .map(|i| {
                    let api = api.clone();
                    let n = network(&format!("peer-{i:03}"), &preferences[i], &[]);
                    async move { api.create(&PostParams::default(), &n).await.unwrap() }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
        }
    };
    create(0..100).await;
    // Kill the controller while it is working through the first half.
    wait_until("some allocations", Duration::from_secs(60), || async {
        allocations(&cluster).await.len() > 20
    })
    .await;
    cm.kill();
    let during = allocations(&cluster).await.len();
    create(100..200).await;
    let mut cm = manager(&cluster, &[]);

    wait_until(
        "all 200 networks allocated",
        Duration::from_secs(120),
        || async {
            allocations(&cluster)
                .await
                .keys()
                .filter(|k| k.starts_with(NS))
                .count()
                == 200
        },
    )
    .await;
    cm.check_running().unwrap();
    let first = allocations(&cluster).await;
    assert_no_overlap(&first);
    assert!(
        during < 200,
        "the kill happened midway ({during} allocated)"
    );
    // The local pod and service CIDRs are reserved as they are.
    assert_eq!(first["liqo/pod-cidr"].0, cluster.pod_cidr().into());
    assert_eq!(first["liqo/service-cidr"].0, cluster.service_cidr().into());
    assert_eq!(first["liqo/external-cidr"].0.to_string(), "10.70.0.0/16");
    // Every peer that asked for the local pod CIDR was remapped, with a condition saying so.
    let remapped = api.get("peer-000").await.unwrap();
    let cond = &remapped.status.as_ref().unwrap().conditions[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("Ready", "True", "Remapped")
    );

    // A second restart changes nothing, and the rebuilt state keeps new allocations apart.
    cm.kill();
    let mut cm = manager(&cluster, &[]);
    api.create(&PostParams::default(), &network("late", "10.0.0.0/16", &[]))
        .await
        .unwrap();
    wait_until("the late network", Duration::from_secs(60), || async {
        allocations(&cluster)
            .await
            .contains_key(&format!("{NS}/late"))
    })
    .await;
    let second = allocations(&cluster).await;
    for (name, alloc) in &first {
        assert_eq!(
            second.get(name),
            Some(alloc),
            "{name} changed after a restart"
        );
    }
    assert_no_overlap(&second);

    // Released space is reused: delete a /16, then ask for one more /16 where it was.
    let freed = second[&format!("{NS}/peer-001")].0;
    api.delete("peer-001", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("peer-001 to go", Duration::from_secs(30), || async {
        api.get_opt("peer-001").await.unwrap().is_none()
    })
    .await;
    api.create(
        &PostParams::default(),
        &network("reuse", &freed.to_string(), &[]),
    )
    .await
    .unwrap();
    wait_until("the reuse network", Duration::from_secs(30), || async {
        allocations(&cluster)
            .await
            .contains_key(&format!("{NS}/reuse"))
    })
    .await;
    assert_eq!(allocations(&cluster).await[&format!("{NS}/reuse")].0, freed);
    cm.check_running().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ips_survive_controller_crashes_and_bad_input_is_reported() {
    let cluster = setup("ipam-ips").await;
    let mut cm = manager(&cluster, &["--ipam-pools", "10.0.0.0/8,192.168.0.0/24"]);
    let api: Api<Ip> = Api::namespaced(cluster.client(), NS);
    let ip = |i: usize| {
        Ip::new(
            &format!("host-{i:03}"),
            IpSpec {
                ip: IpAddress(format!("172.31.{}.{}", i / 250, i % 250 + 1)),
                network_ref: None,
                service_template: None,
                masquerade: None,
            },
        )
    };
    let create = |range: std::ops::Range<usize>| {
        let api = api.clone();
        async move {
            stream::iter(range)
                .map(|i| {
                    let api = api.clone();
                    async move { api.create(&PostParams::default(), &ip(i)).await.unwrap() }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
        }
    };
    let assigned = || async {
        let list = api.list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .filter_map(|i| {
                Some((
                    i.name_any(),
                    i.status
                        .as_ref()?
                        .ip
                        .as_ref()?
                        .as_str()
                        .parse::<IpAddr>()
                        .ok()?,
                ))
            })
            .collect::<BTreeMap<String, IpAddr>>()
    };
    create(0..100).await;
    wait_until("some addresses", Duration::from_secs(60), || async {
        assigned().await.len() > 20
    })
    .await;
    cm.kill();
    create(100..200).await;
    let mut cm = manager(&cluster, &["--ipam-pools", "10.0.0.0/8,192.168.0.0/24"]);
    wait_until("all 200 IPs", Duration::from_secs(120), || async {
        assigned().await.len() == 200
    })
    .await;
    let first = assigned().await;
    let unique: BTreeSet<IpAddr> = first.values().copied().collect();
    assert_eq!(unique.len(), 200, "addresses are unique");
    let external: IpNetwork = "10.70.0.0/16".parse().unwrap();
    for addr in &unique {
        assert!(external.contains(*addr), "{addr} is in the external CIDR");
        assert_ne!(
            addr.to_string(),
            "10.70.0.0",
            "the unknown-source IP is never handed out"
        );
    }
    cm.kill();
    let mut cm = manager(&cluster, &["--ipam-pools", "10.0.0.0/8,192.168.0.0/24"]);
    api.create(&PostParams::default(), &ip(200)).await.unwrap();
    wait_until("one more IP", Duration::from_secs(60), || async {
        assigned().await.len() == 201
    })
    .await;
    let second = assigned().await;
    for (name, addr) in &first {
        assert_eq!(
            second.get(name),
            Some(addr),
            "{name} changed after a restart"
        );
    }
    assert!(
        !unique.contains(&second["host-200"]),
        "the rebuilt allocator knows the old addresses"
    );

    // Bad input: the status says what is wrong and nothing else changes.
    let nets: Api<Network> = Api::namespaced(cluster.client(), NS);
    let before = allocations(&cluster).await;
    let bad = [
        network("host-bits", "10.0.0.1/16", &[]),
        // Must be used as is, but it is the local pod CIDR.
        network(
            "on-pod-cidr",
            &cluster.pod_cidr().to_string(),
            &[("ipam.liqo.io/network-not-remapped", "true")],
        ),
        // The same /25 twice: the second is remapped to the first free /25 in pool order.
        network("small-1", "192.168.0.0/25", &[]),
        network("small-2", "192.168.0.0/25", &[]),
        // No /8 is free in any pool (10.0.0.0/8 is partly in use).
        network("too-big", "10.0.0.0/8", &[]),
    ];
    for n in &bad {
        nets.create(&PostParams::default(), n).await.unwrap();
    }
    let expect = [
        ("host-bits", "InvalidCIDR"),
        ("on-pod-cidr", "Unavailable"),
        ("too-big", "PoolExhausted"),
    ];
    for (name, want) in expect {
        wait_until(
            &format!("{name} to report {want}"),
            Duration::from_secs(30),
            || async {
                let n = nets.get(name).await.unwrap();
                n.status.as_ref().is_some_and(|s| {
                    s.cidr.is_none()
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == want)
                })
            },
        )
        .await;
    }
    let msg = nets
        .get("host-bits")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions[0]
        .message
        .clone();
    assert!(
        msg.contains("10.0.0.0/16"),
        "the message suggests the right network: {msg}"
    );
    let after = allocations(&cluster).await;
    for (name, alloc) in &before {
        assert_eq!(
            after.get(name),
            Some(alloc),
            "{name} changed because of bad input"
        );
    }
    assert!(
        after.contains_key(&format!("{NS}/small-1"))
            && after.contains_key(&format!("{NS}/small-2"))
    );
    cm.check_running()
        .expect("the controller keeps running after bad input");
}
