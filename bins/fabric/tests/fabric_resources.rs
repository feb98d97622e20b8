//! `liqo-fabric` driven by resources on a real control plane (liqo-testenv): from an
//! `InternalFabric`, the node's `InternalNode` and a `GeneveTunnel`, it builds the node's end
//! of the overlay in a "node" network namespace (`--netns`, the agent itself runs in the
//! host namespace to reach the API server on loopback); the pod behind the node reaches the
//! address behind the gateway; a change of `remoteCIDRs` is applied; deleting the
//! `InternalFabric` removes the overlay; SIGTERM leaves nothing.
//!
//! Needs root, `ip`, `ping`, `bash`, `timeout`, `python3` and the Kubernetes binaries; the
//! network part is skipped without them unless `CI` is set (then it fails). A privileged test
//! outside liqo-net: hack/test.sh must run it in its data-plane phase.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::process::{Child, Stdio};
use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use liqo_core::api::networking::v1beta1::{GeneveTunnel, InternalFabric, InternalNode};
use liqo_net::check::{CaseKind, CheckCase, Endpoint, NetnsProbe, run_checks};
use liqo_net::overlay::{Overlay, OverlayKind, OverlayLink, OverlaySpec, RT_PROTOCOL};
use liqo_testenv::{Cluster, ClusterConfig, eventually};
use serde_json::json;

#[path = "../../../liqo-net/tests/support/mod.rs"]
mod support;
use support::{Netns, requirements_met, succeeds};

const NS: &str = "liqo-tenant-milan";
const NODE_IF: &str = "liqo.fabricres1";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn topology() -> (Netns, Netns, Netns) {
    let pod = Netns::new("fr-pod");
    let node = Netns::new("fr-node");
    let gw = Netns::new("fr-gw");
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "pod0", "netns", &node.name,
    ]);
    pod.ip(&["addr", "add", "10.0.1.2/24", "dev", "eth0"]);
    pod.ip(&["link", "set", "eth0", "up"]);
    pod.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    node.ip(&["addr", "add", "10.0.1.1/24", "dev", "pod0"]);
    node.ip(&["link", "set", "pod0", "up"]);
    node.ip(&[
        "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &gw.name,
    ]);
    node.ip(&["addr", "add", "192.168.96.1/24", "dev", "u0"]);
    node.ip(&["link", "set", "u0", "up"]);
    gw.ip(&["addr", "add", "192.168.96.2/24", "dev", "u0"]);
    gw.ip(&["link", "set", "u0", "up"]);
    gw.ip(&["addr", "add", "10.71.0.5/32", "dev", "lo"]);
    gw.ip(&["addr", "add", "10.72.0.5/32", "dev", "lo"]);
    assert!(succeeds(
        node.cmd("sysctl").args(["-qw", "net.ipv4.ip_forward=1"])
    ));
    (pod, node, gw)
}

/// Whether the pod reaches `target` over ICMP and TCP (port 8080).
async fn reaches(pod: &Netns, target: &str) -> bool {
    let case = CheckCase::new(
        CaseKind::PodToPod,
        Endpoint::new("pod", &pod.name),
        "behind-gateway",
        target.parse().unwrap(),
        Some(8080),
    );
    run_checks(&NetnsProbe::default(), &[case]).await.all_ok()
}

fn rules(node: &Netns) -> usize {
    node.ip(&["rule", "show"])
        .lines()
        .filter(|l| l.contains(&format!("proto {RT_PROTOCOL}")))
        .count()
}

#[tokio::test]
async fn fabric_agent_from_resources() {
    if !requirements_met(
        "fabric_agent_from_resources",
        &["ip", "ping", "python3", "bash", "timeout"],
        &[],
    ) {
        return;
    }
    let cluster = Cluster::start(ClusterConfig::new("lna-fabric").nodes(0))
        .await
        .unwrap();
    cluster.install_crds(liqo_core::api::crds()).await.unwrap();
    cluster.create_namespace(NS).await.unwrap();
    let client = cluster.client();

    let (pod, node, gw) = topology();
    // The gateway's end, as the gateway would build it (VNI from the GeneveTunnel below).
    let gw_side = Overlay::new(OverlaySpec::gateway(
        &OverlayLink::new(
            OverlayKind::Vxlan,
            77,
            "192.168.96.1".parse().unwrap(),
            "192.168.96.2".parse().unwrap(),
            "10.80.0.2".parse().unwrap(),
            "10.80.0.1".parse().unwrap(),
        ),
        "liqo.fabricres2",
        vec!["10.0.1.0/24".parse().unwrap()],
    ))
    .unwrap()
    .in_netns(&gw.name);
    gw_side.ensure().await.unwrap();
    let _servers: Vec<KillOnDrop> = ["10.71.0.5", "10.72.0.5"]
        .iter()
        .map(|addr| {
            KillOnDrop(
                gw.cmd("python3")
                    .args(["-m", "http.server", "--bind", addr, "8080"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();

    let pp = PostParams::default();
    let node_res: InternalNode = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalNode",
        "metadata": {"name": "node-1"},
        "spec": {"interface": {"node": {"ip": "10.80.0.2"}, "gateway": {"name": "liqo.fabricres2"}}}
    }))
    .unwrap();
    Api::<InternalNode>::all(client.clone())
        .create(&pp, &node_res)
        .await
        .unwrap();
    let fabrics = Api::<InternalFabric>::namespaced(client.clone(), NS);
    let fabric: InternalFabric = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
        "metadata": {"name": "gw-milan", "namespace": NS},
        "spec": {"gatewayIP": "192.168.96.2", "remoteCIDRs": ["10.71.0.0/16"], "mtu": 1400,
                 "interface": {"node": {"name": NODE_IF}, "gateway": {"ip": "10.80.0.1"}}}
    }))
    .unwrap();
    fabrics.create(&pp, &fabric).await.unwrap();
    let tunnel: GeneveTunnel = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GeneveTunnel",
        "metadata": {"name": "gw-milan-node-1", "namespace": NS},
        "spec": {"id": 77, "internalNodeRef": {"name": "node-1"},
                 "internalFabricRef": {"name": "gw-milan", "namespace": NS}}
    }))
    .unwrap();
    Api::<GeneveTunnel>::namespaced(client.clone(), NS)
        .create(&pp, &tunnel)
        .await
        .unwrap();

    let mut fabric_agent = cluster
        .daemon(
            "liqo-fabric",
            env!("CARGO_BIN_EXE_liqo-fabric"),
            [
                "--node-name",
                "node-1",
                "--node-ip",
                "192.168.96.1",
                "--netns",
                &node.name,
                "--resync-interval",
                "1",
            ],
        )
        .unwrap();

    let within = Duration::from_secs(30);
    eventually(
        "the pod reaches 10.71.0.5 over the overlay",
        within,
        || async { reaches(&pod, "10.71.0.5").await.then_some(()) },
    )
    .await;
    let details = node.ip(&["-d", "link", "show", "dev", NODE_IF]);
    assert!(
        details.contains("vxlan id 77 remote 192.168.96.2"),
        "{details}"
    );
    assert!(details.contains("mtu 1400"), "{details}");
    assert!(
        !reaches(&pod, "10.72.0.5").await,
        "10.72.0.5 routed before it was asked for"
    );

    // A new remote CIDR in the resource is applied.
    fabrics
        .patch(
            "gw-milan",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"remoteCIDRs": ["10.71.0.0/16", "10.72.0.0/16"]}})),
        )
        .await
        .unwrap();
    eventually("the pod reaches 10.72.0.5", within, || async {
        reaches(&pod, "10.72.0.5").await.then_some(())
    })
    .await;
    assert_eq!(rules(&node), 3, "{}", node.ip(&["rule", "show"]));

    // Deleting the InternalFabric removes its overlay.
    fabrics
        .delete("gw-milan", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the overlay is removed", within, || async {
        (!node.has_link(NODE_IF) && rules(&node) == 0).then_some(())
    })
    .await;
    assert!(!reaches(&pod, "10.71.0.5").await);

    // Back, then SIGTERM: everything is removed and the agent exits by itself.
    fabrics.create(&pp, &fabric).await.unwrap();
    eventually("the overlay is back", within, || async {
        reaches(&pod, "10.71.0.5").await.then_some(())
    })
    .await;
    fabric_agent.check_running().unwrap();
    assert!(
        fabric_agent.terminate(Duration::from_secs(20)),
        "no clean exit on SIGTERM"
    );
    assert!(!node.has_link(NODE_IF));
    assert_eq!(rules(&node), 0, "{}", node.ip(&["rule", "show"]));
    gw_side.remove().await.unwrap();
}
