//! The gateways driven by resources on two real control planes (liqo-testenv): the IPAM and
//! Configuration controllers remap the peer's pod CIDR (both clusters use 10.0.0.0/16), a
//! GatewayServer on the provider and a GatewayClient on the consumer start the tunnel once
//! the PublicKeys are exchanged, both Connections report Connected with a latency, and pods
//! (in network namespaces) reach each other at the remapped addresses. Deleting the
//! GatewayClient removes the client's data plane; SIGTERM leaves nothing behind.
//!
//! The gateways run as processes in network namespaces; the API servers listen on the
//! host's loopback, forwarded into each gateway namespace. Needs root (see `dataplane.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use liqo_core::api::networking::v1beta1::{
    Cidr, ClusterConfig, ClusterConfigCidr, Configuration, ConfigurationSpec, Connection,
    ConnectionStatusValue, Endpoint, EndpointStatus, GatewayClient, GatewayClientSpec,
    GatewayServer, GatewayServerSpec, PublicKey, PublicKeySpec, ServiceType,
};
use liqo_core::labels;
use liqo_ipam::remap::{Mapping, RemoteCidrs};
use liqo_net::check::{NetnsProbe, check_peering};
use liqo_testenv::{Cluster, ClusterConfig as TestClusterConfig, eventually};

const WAIT: Duration = Duration::from_secs(90);

fn labelled(name: &str, ns: &str, remote: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        labels: Some(BTreeMap::from([
            (
                labels::core::REMOTE_CLUSTER_ID.to_owned(),
                remote.to_owned(),
            ),
            (
                labels::networking::GATEWAY_RESOURCE.to_owned(),
                labels::TRUE.to_owned(),
            ),
        ])),
        ..ObjectMeta::default()
    }
}

/// Starts the IPAM and Configuration controllers of `cluster` in this process.
fn controllers(cluster: &Cluster) {
    let client = cluster.client();
    let ipam = liqo_ipam::controller::Config {
        pod_cidrs: vec![POD_CIDR.parse().unwrap()],
        service_cidr: Some(cluster.service_cidr().into()),
        ..liqo_ipam::controller::Config::default()
    };
    let allocator =
        Arc::new(liqo_ipam::TreeAllocator::new(vec!["10.0.0.0/8".parse().unwrap()]).unwrap());
    tokio::spawn(liqo_ipam::controller::run(
        client.clone(),
        allocator,
        ipam,
        std::future::pending(),
    ));
    tokio::spawn(liqo_net::configuration::run(
        client,
        liqo_net::configuration::Options::default(),
        std::future::pending(),
    ));
}

/// The Configuration `peer` on a cluster: the peer uses the same CIDRs as everyone here.
async fn configure(client: &Client, peer: &str) -> (String, String) {
    let ns = format!("liqo-tenant-{peer}");
    let cfg = Configuration {
        metadata: labelled(peer, &ns, peer),
        spec: ConfigurationSpec {
            local: None,
            remote: Some(ClusterConfig {
                cidr: Some(ClusterConfigCidr {
                    pod: vec![Cidr(POD_CIDR.into())],
                    external: vec![Cidr(EXTERNAL_CIDR.into())],
                }),
            }),
        },
        status: None,
    };
    let api: Api<Configuration> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &cfg).await.unwrap();
    eventually(&format!("Configuration {peer} remapped"), WAIT, || async {
        let cfg = api.get(peer).await.ok()?;
        let remote = cfg.status?.remote?.cidr?;
        let local = cfg.spec.local?.cidr?;
        (!local.pod.is_empty()).then_some(())?;
        Some((
            remote.pod.first()?.to_string(),
            remote.external.first()?.to_string(),
        ))
    })
    .await
}

async fn secret_public_key(client: &Client, ns: &str, name: &str) -> Vec<u8> {
    let secret: Secret = Api::namespaced(client.clone(), ns).get(name).await.unwrap();
    secret.data.unwrap()["publicKey"].0.clone()
}

async fn connected(client: &Client, ns: &str, name: &str) -> Option<String> {
    let conn: Connection = Api::namespaced(client.clone(), ns).get(name).await.ok()?;
    let status = conn.status?;
    (status.value == Some(ConnectionStatusValue::Connected))
        .then(|| status.latency.and_then(|l| l.value).unwrap_or_default())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateways_follow_their_resources_between_two_real_clusters() {
    if !requirements_met(
        "gateway resource test",
        &["ip", "nft", "ping", "python3"],
        &["/dev/net/tun"],
    ) {
        return;
    }
    let cidr = POD_CIDR.parse().unwrap();
    let clusters = Cluster::start_all(vec![
        TestClusterConfig::new("gw-rome").pod_cidr(cidr).nodes(1),
        TestClusterConfig::new("gw-milan").pod_cidr(cidr).nodes(1),
    ])
    .await
    .unwrap();
    let (rome, milan) = (&clusters[0], &clusters[1]);
    for (cluster, peer) in [(rome, "milan"), (milan, "rome")] {
        cluster.install_crds(liqo_core::api::crds()).await.unwrap();
        cluster.create_namespace("liqo").await.unwrap();
        cluster
            .create_namespace(&format!("liqo-tenant-{peer}"))
            .await
            .unwrap();
        controllers(cluster);
    }
    let (rc, mc) = (rome.client(), milan.client());

    // Networking step 1: each side learns the other's CIDRs; the IPAM remaps them.
    let rome_view = configure(&rc, "milan").await;
    let milan_view = configure(&mc, "rome").await;
    eprintln!("rome sees milan's pods as {rome_view:?}, milan sees rome's as {milan_view:?}");
    assert_ne!(
        rome_view.0, POD_CIDR,
        "the overlapping pod CIDR must be remapped"
    );
    assert_ne!(milan_view.0, POD_CIDR);

    // The simulated data plane of both clusters.
    let mut wan = Wan::new();
    let mut sim_rome = SimCluster::new("r");
    let mut sim_milan = SimCluster::new("m");
    let rome_gw = sim_rome.add_gateway("m", &[&rome_view.0, &rome_view.1]);
    let milan_gw = sim_milan.add_gateway("r", &[&milan_view.0, &milan_view.1]);
    wan.attach(&rome_gw);
    wan.attach(&milan_gw);
    forward_port_into(&rome_gw, port_of(rome.apiserver_url()));
    forward_port_into(&milan_gw, port_of(milan.apiserver_url()));
    let dir = std::env::temp_dir().join(format!("liqo-gw-resources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id() % 100_000;
    let (rome_tunnel, milan_tunnel) = (format!("ltr{pid}"), format!("ltm{pid}"));

    // Step 2: the provider (milan) gets a GatewayServer for rome; its gateway answers with
    // the endpoint and the key Secret.
    let server_api: Api<GatewayServer> = Api::namespaced(mc.clone(), "liqo-tenant-rome");
    let server = GatewayServer {
        metadata: labelled("rome", "liqo-tenant-rome", "rome"),
        spec: GatewayServerSpec {
            mtu: Some(1340),
            endpoint: Some(Endpoint {
                port: Some(51840),
                service_type: ServiceType::NodePort,
                ..Endpoint::default()
            }),
            ..GatewayServerSpec::default()
        },
        status: None,
    };
    server_api
        .create(&PostParams::default(), &server)
        .await
        .unwrap();
    let kubeconfig = |c: &Cluster| c.kubeconfig_path().to_str().unwrap().to_owned();
    let milan_args = [
        "--kubeconfig".to_owned(),
        kubeconfig(milan),
        "--mode".into(),
        "server".into(),
        "--name".into(),
        "rome".into(),
        "--namespace".into(),
        "liqo-tenant-rome".into(),
        "--remote-cluster-id".into(),
        "rome".into(),
        "--tunnel-interface".into(),
        milan_tunnel.clone(),
        "--ping-interval".into(),
        "0.5".into(),
        "--resync".into(),
        "1".into(),
    ];
    let args: Vec<&str> = milan_args.iter().map(String::as_str).collect();
    let milan_proc = start_gateway(&milan_gw, &args, &dir.join("milan.log"));
    let (endpoint, server_secret) = eventually("GatewayServer status", WAIT, || async {
        let status = server_api.get("rome").await.ok()?.status?;
        let endpoint = status.endpoint?;
        let secret = status.secret_ref?.name?;
        (!endpoint.addresses.is_empty()).then_some((endpoint, secret))
    })
    .await;
    eprintln!(
        "server endpoint {:?}:{:?}",
        endpoint.addresses, endpoint.port
    );
    assert!(endpoint.addresses[0].starts_with("198.18.0."));

    // Step 3: the consumer (rome) gets a GatewayClient pointing at that endpoint.
    let client_api: Api<GatewayClient> = Api::namespaced(rc.clone(), "liqo-tenant-milan");
    let client = GatewayClient {
        metadata: labelled("milan", "liqo-tenant-milan", "milan"),
        spec: GatewayClientSpec {
            mtu: Some(1340),
            endpoint: Some(EndpointStatus {
                addresses: endpoint.addresses.clone(),
                port: endpoint.port,
                protocol: endpoint.protocol,
                ..EndpointStatus::default()
            }),
            ..GatewayClientSpec::default()
        },
        status: None,
    };
    client_api
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    let rome_args: Vec<String> = milan_args
        .iter()
        .map(|a| match a.as_str() {
            "server" => "client".to_owned(),
            "rome" => "milan".to_owned(),
            "liqo-tenant-rome" => "liqo-tenant-milan".to_owned(),
            other if other == milan_tunnel => rome_tunnel.clone(),
            other if other == kubeconfig(milan) => kubeconfig(rome),
            other => other.to_owned(),
        })
        .collect();
    let args: Vec<&str> = rome_args.iter().map(String::as_str).collect();
    let rome_proc = start_gateway(&rome_gw, &args, &dir.join("rome.log"));
    let client_secret = eventually("GatewayClient status", WAIT, || async {
        client_api.get("milan").await.ok()?.status?.secret_ref?.name
    })
    .await;

    // Without the peer's key nobody is connected.
    let conn_rome: Api<Connection> = Api::namespaced(rc.clone(), "liqo-tenant-milan");
    eventually("Connection gw-milan created", WAIT, || async {
        conn_rome.get("gw-milan").await.ok()
    })
    .await;
    assert!(
        connected(&rc, "liqo-tenant-milan", "gw-milan")
            .await
            .is_none()
    );

    // Step 4: the public keys are exchanged as PublicKey resources.
    let server_key = secret_public_key(&mc, "liqo-tenant-rome", &server_secret).await;
    let client_key = secret_public_key(&rc, "liqo-tenant-milan", &client_secret).await;
    assert_eq!((server_key.len(), client_key.len()), (32, 32));
    for (c, ns, peer, key) in [
        (&rc, "liqo-tenant-milan", "milan", server_key),
        (&mc, "liqo-tenant-rome", "rome", client_key),
    ] {
        let pk = PublicKey {
            metadata: labelled(peer, ns, peer),
            spec: PublicKeySpec {
                public_key: Some(ByteString(key)),
            },
        };
        Api::<PublicKey>::namespaced(c.clone(), ns)
            .create(&PostParams::default(), &pk)
            .await
            .unwrap();
    }
    let latency = eventually("both Connections Connected", WAIT, || async {
        let a = connected(&rc, "liqo-tenant-milan", "gw-milan").await?;
        let b = connected(&mc, "liqo-tenant-rome", "gw-rome").await?;
        Some((a, b))
    })
    .await;
    eprintln!("Connected; latency rome {} milan {}", latency.0, latency.1);

    // Pods reach each other at the addresses the IPAM chose.
    let milan_pod_from_rome = remap(&rome_view.0, POD1);
    let rome_pod_from_milan = remap(&milan_view.0, POD2);
    let rome_pod = sim_rome.pod(0).name.clone();
    eventually("rome pod -> milan pod", WAIT, || {
        let (p, target) = (rome_pod.clone(), milan_pod_from_rome.clone());
        async move { blocking(move || ping_in(&p, &target)).await.then_some(()) }
    })
    .await;
    let milan_pod = sim_milan.pod(0).name.clone();
    let seen = blocking(move || tcp_in(&milan_pod, &rome_pod_from_milan)).await;

    // The network check `liqoctl test network` runs: every pod and node of each cluster to
    // every pod of the other, ICMP and TCP, at the addresses the IPAM chose.
    let view = |v: &(String, String)| RemoteCidrs {
        pod: vec![Mapping::new(POD_CIDR.parse().unwrap(), v.0.parse().unwrap()).unwrap()],
        external: vec![Mapping::new(EXTERNAL_CIDR.parse().unwrap(), v.1.parse().unwrap()).unwrap()],
    };
    let report = check_peering(
        &NetnsProbe::default(),
        &sim_rome.check_endpoints("rome"),
        &sim_milan.check_endpoints("milan"),
        &view(&rome_view),
        &view(&milan_view),
    )
    .await;
    eprintln!("{}", report.render());
    assert!(report.all_ok(), "{}", report.render());
    assert_eq!(
        seen.as_deref(),
        Some(format!("r-p2 {}", remap(&rome_view.0, POD1)).as_str())
    );

    // Deleting the GatewayClient removes the client's data plane.
    client_api
        .delete("milan", &DeleteParams::default())
        .await
        .unwrap();
    let rome_gw_name = rome_gw.name.clone();
    let tunnel = rome_tunnel.clone();
    eventually("the client's tunnel removed", WAIT, || {
        let (ns, tunnel) = (rome_gw_name.clone(), tunnel.clone());
        async move {
            blocking(move || {
                !succeeds(
                    std::process::Command::new("ip").args(["-n", &ns, "link", "show", &tunnel]),
                )
            })
            .await
            .then_some(())
        }
    })
    .await;

    let (rome_log, milan_log) = (rome_proc.log_tail(), milan_proc.log_tail());
    let statuses = blocking(move || (rome_proc.terminate(), milan_proc.terminate())).await;
    assert!(
        statuses.0.success(),
        "rome gateway: {}\n{rome_log}",
        statuses.0
    );
    assert!(
        statuses.1.success(),
        "milan gateway: {}\n{milan_log}",
        statuses.1
    );
    assert_eq!(leftovers(&rome_gw, &rome_tunnel), Vec::<String>::new());
    assert_eq!(leftovers(&milan_gw, &milan_tunnel), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ip` (10.0.x.y) translated into `view` (e.g. 10.71.0.0/16).
fn remap(view: &str, ip: &str) -> String {
    let prefix: Vec<&str> = view.split('.').take(2).collect();
    let host: Vec<&str> = ip.split('.').skip(2).collect();
    format!("{}.{}", prefix.join("."), host.join("."))
}
