//! Peering between two real control planes with the real binaries (liqo-controller-manager on
//! each cluster, liqoctl): every resource of the flow on the right side, ForeignClusters,
//! least-privilege RBAC of the control-plane identity, certificate renewal through Renew,
//! idempotent re-runs, unpeer with namespace retention, bidirectional peering, info/version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt as _};
use liqo_core::api::authentication::v1beta1::{
    Identity, Renew, ResourceSlice, ResourceSliceConditionStatus, Tenant,
};
use liqo_core::api::core::v1beta1::{ForeignCluster, RoleType};
use liqo_core::api::offloading::v1beta1::{Quota, VirtualNode};
use liqo_core::ids::ClusterId;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rome_peers_with_milan_and_unpeers() {
    let clusters = clusters(&["pb-rome", "pb-milan"]).await;
    let (rome, milan) = (&clusters[0], &clusters[1]);
    let _m_rome = manager(rome, "rome", &[]);
    let _m_milan = manager(milan, "milan", &[]);
    let milan_kc = milan.kubeconfig_path().display().to_string();
    ready(rome).await;
    ready(milan).await;

    // --- peer ---
    let out = peer(rome, milan, &["--cpu", "2", "--memory", "4Gi"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("✔ Tenant rome accepted by milan"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Peering rome -> milan established"),
        "{stdout}"
    );

    // Consumer side (rome): signed nonce, Identities, kubeconfig Secrets, slice, virtual node.
    let rc = rome.client();
    let on_rome = "liqo-tenant-milan";
    let ids = names::<Identity>(rome, Some(on_rome)).await;
    assert_eq!(
        ids,
        [
            "liqo-tenant-milan/controlplane-milan",
            "liqo-tenant-milan/resourceslice-milan"
        ]
    );
    let secret = Api::<Secret>::namespaced(rc.clone(), on_rome)
        .get("kubeconfig-controlplane-milan")
        .await
        .unwrap();
    assert_eq!(secret.labels()["liqo.io/identity-type"], "ControlPlane");
    assert_eq!(secret.labels()["liqo.io/remote-cluster-id"], "milan");
    assert_eq!(
        secret.annotations()["liqo.io/remote-tenant-namespace"],
        "liqo-tenant-rome"
    );
    Api::<Secret>::namespaced(rc.clone(), on_rome)
        .get("kubeconfig-resourceslice-milan")
        .await
        .unwrap();
    Api::<Secret>::namespaced(rc.clone(), on_rome)
        .get("liqo-signed-nonce")
        .await
        .unwrap();
    let slice = Api::<ResourceSlice>::namespaced(rc.clone(), on_rome)
        .get("milan")
        .await
        .unwrap();
    let st = slice.status.clone().unwrap();
    assert!(
        st.conditions
            .iter()
            .all(|c| c.status == ResourceSliceConditionStatus::Accepted)
    );
    assert_eq!(st.conditions.len(), 2);
    assert_eq!(st.resources["cpu"].0, "2");
    let vn = Api::<VirtualNode>::namespaced(rc.clone(), on_rome)
        .get("milan")
        .await
        .unwrap();
    assert_eq!(vn.spec.cluster_id.as_deref(), Some("milan"));
    assert_eq!(
        vn.spec.kubeconfig_secret_ref.as_ref().unwrap().name,
        "kubeconfig-resourceslice-milan"
    );
    let hard = vn.spec.resource_quota.unwrap().hard.unwrap();
    assert_eq!(hard["memory"].0, "4Gi");

    // Provider side (milan): nonce, Tenant with a certificate, replica slice, Quota.
    let mc = milan.client();
    let on_milan = "liqo-tenant-rome";
    Api::<Secret>::namespaced(mc.clone(), on_milan)
        .get("liqo-nonce")
        .await
        .unwrap();
    let tenant = Api::<Tenant>::namespaced(mc.clone(), on_milan)
        .get("rome")
        .await
        .unwrap();
    assert!(
        tenant
            .status
            .unwrap()
            .auth_params
            .unwrap()
            .signed_crt
            .is_some()
    );
    let replica = Api::<ResourceSlice>::namespaced(mc.clone(), on_milan)
        .get("milan")
        .await
        .unwrap();
    assert_eq!(replica.labels()["liqo.io/replicated"], "true");
    assert_eq!(replica.labels()["liqo.io/originID"], "rome");
    assert_eq!(names::<Quota>(milan, Some(on_milan)).await.len(), 1);
    // Nothing of the consumer side leaks to the provider and vice versa.
    assert!(names::<Identity>(milan, None).await.is_empty());
    assert!(names::<Tenant>(rome, None).await.is_empty());

    // ForeignClusters: milan is a Provider for rome, rome a Consumer for milan.
    let fc = liqo_testenv::eventually("ForeignCluster rome on milan", WAIT, || {
        let mc = mc.clone();
        async move {
            let fc = Api::<ForeignCluster>::all(mc)
                .get_opt("rome")
                .await
                .ok()??;
            (fc.status.as_ref()?.role == RoleType::Consumer).then_some(fc)
        }
    })
    .await;
    let m = fc.status.unwrap().modules.unwrap();
    assert!(m.authentication.enabled && m.offloading.enabled && !m.networking.enabled);
    let info = liqoctl_ok(rome, &["info"]);
    assert!(
        info.contains("milan") && info.contains("Provider"),
        "{info}"
    );
    assert!(
        info.contains("labels:      none\n"),
        "no --cluster-labels: {info}"
    );
    let line = info.lines().find(|l| l.starts_with("milan")).unwrap();
    assert!(
        line.contains("Disabled") && line.matches("Established").count() == 2,
        "{line}"
    );
    let detail = liqoctl_ok(rome, &["info", "peer", "milan"]);
    assert!(
        detail.contains("kubeconfig-resourceslice-milan"),
        "{detail}"
    );
    assert!(
        detail.contains(&milan.apiserver_url().trim_end_matches('/').to_string()),
        "{detail}"
    );
    let version = liqoctl_ok(rome, &["version", "--remote-kubeconfig", &milan_kc]);
    assert!(version.contains("local cluster rome") && version.contains("remote cluster milan"));

    // Least privilege: the control-plane identity may manage ResourceSlices in its tenant
    // namespace on milan, and nothing else.
    let yaml = String::from_utf8(secret.data.unwrap()["kubeconfig"].0.clone()).unwrap();
    let as_rome = liqo_auth::kubeconfig::client_from_yaml(&yaml)
        .await
        .unwrap();
    Api::<ResourceSlice>::namespaced(as_rome.clone(), on_milan)
        .list(&ListParams::default())
        .await
        .expect("the control-plane identity may list ResourceSlices in its tenant namespace");
    for forbidden in [
        Api::<Secret>::namespaced(as_rome.clone(), on_milan)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        Api::<ResourceSlice>::namespaced(as_rome.clone(), "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        Api::<Tenant>::namespaced(as_rome.clone(), on_milan)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
    ] {
        match forbidden {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
            other => panic!("expected 403 Forbidden, got {other:?}"),
        }
    }

    // Renewal path: a Renew (what the identity controller creates at 2/3 of the lifetime) is
    // replicated to milan, answered with a fresh certificate, adopted by the Identity.
    let identity = Api::<Identity>::namespaced(rc.clone(), on_rome)
        .get("controlplane-milan")
        .await
        .unwrap();
    let old_cert = identity
        .spec
        .auth_params
        .clone()
        .unwrap()
        .signed_crt
        .unwrap();
    let keys = liqo_auth::bootstrap::read_keys(&rc, "liqo").await.unwrap();
    let rome_id = ClusterId::new("rome").unwrap();
    let milan_id = ClusterId::new("milan").unwrap();
    let csr = liqo_auth::create_csr(&keys, &rome_id).unwrap();
    let renew =
        liqo_auth::forge::renew(&identity, &rome_id, &milan_id, &keys.public_key_pem(), &csr);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await; // a new notBefore second
    Api::<Renew>::namespaced(rc.clone(), on_rome)
        .create(&PostParams::default(), &renew)
        .await
        .unwrap();
    liqo_testenv::eventually("the renewed certificate", WAIT, || {
        let rc = rc.clone();
        let old = old_cert.clone();
        async move {
            let id = Api::<Identity>::namespaced(rc.clone(), on_rome)
                .get("controlplane-milan")
                .await
                .ok()?;
            let gone = Api::<Renew>::namespaced(rc, on_rome)
                .get_opt("controlplane-milan")
                .await
                .ok()?
                .is_none();
            (id.spec.auth_params?.signed_crt? != old && gone).then_some(())
        }
    })
    .await;

    // Re-running is safe: nothing duplicated.
    assert!(
        peer(rome, milan, &["--cpu", "2", "--memory", "4Gi"])
            .status
            .success()
    );
    assert_eq!(names::<Identity>(rome, None).await.len(), 2);
    assert_eq!(names::<ResourceSlice>(milan, None).await.len(), 1);
    assert_eq!(names::<Quota>(milan, None).await.len(), 1);

    // --- unpeer, keeping the tenant namespaces ---
    liqoctl_ok(
        rome,
        &[
            "unpeer",
            "--remote-kubeconfig",
            &milan_kc,
            "--keep-namespaces",
        ],
    );
    for c in [rome, milan] {
        let left = liqo_testenv::eventually("no Liqo resource left", WAIT, || async {
            let l = liqo_leftovers(c).await;
            l.is_empty().then_some(l)
        })
        .await;
        assert!(left.is_empty());
    }
    assert_eq!(tenant_namespaces(rome).await, ["liqo-tenant-milan"]);
    assert_eq!(tenant_namespaces(milan).await, ["liqo-tenant-rome"]);

    // --- bidirectional ---
    let out = peer(rome, milan, &["--bidirectional"]);
    assert!(out.status.success());
    for (c, peer_id) in [(rome, "milan"), (milan, "rome")] {
        let client = c.client();
        liqo_testenv::eventually("ConsumerAndProvider", WAIT, || {
            let client = client.clone();
            async move {
                let fc = Api::<ForeignCluster>::all(client)
                    .get_opt(peer_id)
                    .await
                    .ok()??;
                (fc.status?.role == RoleType::ConsumerAndProvider).then_some(())
            }
        })
        .await;
        assert_eq!(names::<VirtualNode>(c, None).await.len(), 1);
    }
    // Default grant (no --cpu): the provider's defaults.
    let slice = Api::<ResourceSlice>::namespaced(mc.clone(), "liqo-tenant-rome")
        .get("rome")
        .await
        .unwrap();
    assert_eq!(slice.status.unwrap().resources["cpu"].0, "4");

    // Unpeer one direction: the reverse one stays.
    liqoctl_ok(rome, &["unpeer", "--remote-kubeconfig", &milan_kc]);
    assert!(names::<VirtualNode>(rome, None).await.is_empty());
    assert_eq!(names::<VirtualNode>(milan, None).await.len(), 1);
    // And the other direction: everything goes, namespaces included.
    let rome_kc = rome.kubeconfig_path().display().to_string();
    liqoctl_ok(milan, &["unpeer", "--remote-kubeconfig", &rome_kc]);
    for c in [rome, milan] {
        liqo_testenv::eventually("everything removed", WAIT, || async {
            (liqo_leftovers(c).await.is_empty() && tenant_namespaces(c).await.is_empty())
                .then_some(())
        })
        .await;
    }
}
