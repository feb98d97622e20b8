//! Bad input on real control planes: a missing, wrong-credential or unreachable kubeconfig, a
//! cluster id collision, a cluster id change, more resources than shared, a tampered nonce
//! signature, and `unpeer --force` when the peer is gone. Each is refused with a message
//! saying what to do, and nothing half-created is left on either side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams};
use liqo_core::api::authentication::v1beta1::Tenant;
use liqo_core::ids::ClusterId;
use support::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn assert_clean(c: &liqo_testenv::Cluster) {
    liqo_testenv::eventually("nothing half-created", WAIT, || async {
        let l = liqo_leftovers(c).await;
        let ns = tenant_namespaces(c).await;
        (l.is_empty() && ns.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_leaves_nothing() {
    let clusters = clusters(&["pb-naples", "pb-turin"]).await;
    let (naples, turin) = (&clusters[0], &clusters[1]);
    let dir = naples.dir().to_owned();
    let turin_kc = turin.kubeconfig_path().display().to_string();
    let turin_yaml = std::fs::read_to_string(turin.kubeconfig_path()).unwrap();
    let naples_yaml = std::fs::read_to_string(naples.kubeconfig_path()).unwrap();

    // Cluster id collision: both clusters say "naples".
    let _m_naples = manager(naples, "naples", &[]);
    let mut m_turin = manager(turin, "naples", &[]);
    ready(naples).await;
    ready(turin).await;
    let out = peer(naples, turin, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("both clusters have cluster id \"naples\""),
        "{}",
        stderr(&out)
    );
    // A cluster id never changes silently: restarting with another id is refused.
    m_turin.kill();
    let mut wrong = manager(turin, "turin", &[]);
    liqo_testenv::eventually("the manager to refuse the new id", WAIT, || {
        let dead = wrong.check_running().is_err();
        async move { dead.then_some(()) }
    })
    .await;
    let log = std::fs::read_to_string(wrong.log_path()).unwrap();
    assert!(log.contains("already has cluster id \"naples\""), "{log}");
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(turin.client(), "liqo")
        .delete("liqo-clusterid-configmap", &Default::default())
        .await
        .unwrap();
    let _m_turin = manager(turin, "turin", &[]);
    liqo_testenv::eventually("turin's new id", WAIT, || {
        let c = turin.client();
        async move {
            let id = liqo_auth::bootstrap::read_cluster_id(&c, "liqo")
                .await
                .ok()?;
            (id.as_str() == "turin").then_some(())
        }
    })
    .await;
    assert_clean(naples).await;
    assert_clean(turin).await;

    // Missing kubeconfig.
    let out = liqoctl(
        naples,
        &["peer", "--remote-kubeconfig", "/nonexistent/kubeconfig"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read the remote kubeconfig /nonexistent/kubeconfig"));

    // Wrong (rejected) credentials: turin's server with naples' client certificate.
    let cert = |yaml: &str, key: &str| {
        yaml.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .to_owned()
    };
    let mut bad = turin_yaml.clone();
    for key in ["client-certificate-data:", "client-key-data:"] {
        bad = bad.replace(&cert(&turin_yaml, key), &cert(&naples_yaml, key));
    }
    let bad_path = dir.join("bad-credentials.kubeconfig");
    std::fs::write(&bad_path, bad).unwrap();
    let out = liqoctl(
        naples,
        &[
            "peer",
            "--remote-kubeconfig",
            bad_path.to_str().unwrap(),
            "--skip-networking",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rejected the credentials"),
        "{}",
        stderr(&out)
    );

    // Unreachable peer: a port nobody listens on.
    let port = turin
        .apiserver_url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let unreachable = turin_yaml.replace(&format!(":{port}"), ":1");
    let unreachable_path = dir.join("unreachable.kubeconfig");
    std::fs::write(&unreachable_path, unreachable).unwrap();
    let out = liqoctl(
        naples,
        &[
            "peer",
            "--remote-kubeconfig",
            unreachable_path.to_str().unwrap(),
            "--skip-networking",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the remote cluster"),
        "{}",
        stderr(&out)
    );
    assert_clean(naples).await;

    // More resources than turin shares: denied, with what to do, and rolled back.
    let out = peer(naples, turin, &["--cpu", "1000"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("turin denied the resources of ResourceSlice turin"),
        "{err}"
    );
    assert!(err.contains("cpu: requested 1000 but only"), "{err}");
    assert!(err.contains("liqoctl peer --cpu"), "{err}");
    assert_clean(naples).await;
    assert_clean(turin).await;

    // A tampered nonce signature: the Tenant is refused, with the reason in its events, and
    // no certificate or permission is granted.
    let naples_id = ClusterId::new("naples").unwrap();
    let tc = turin.client();
    // A tenant namespace is labelled with the cluster it belongs to (the Tenant admission
    // policy binds a Tenant's clusterID to that label).
    Api::<k8s_openapi::api::core::v1::Namespace>::all(tc.clone())
        .create(
            &PostParams::default(),
            &liqo_auth::forge::tenant_namespace(&naples_id),
        )
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(tc.clone(), "liqo-tenant-naples");
    secrets
        .create(
            &PostParams::default(),
            &liqo_auth::forge::nonce_secret(&naples_id),
        )
        .await
        .unwrap();
    let nonce = liqo_testenv::eventually("the nonce", WAIT, || {
        let secrets = secrets.clone();
        async move {
            let s = secrets.get("liqo-nonce").await.ok()?;
            let raw = s.data?.get("nonce")?.0.clone();
            liqo_auth::Nonce::from_secret_data(&raw).ok()
        }
    })
    .await;
    let keys = liqo_auth::bootstrap::read_keys(&naples.client(), "liqo")
        .await
        .unwrap();
    let mut signature = liqo_auth::sign_nonce(&keys, &nonce).into_bytes();
    signature[0] ^= 0xff; // tampered
    let csr = liqo_auth::create_csr(&keys, &naples_id).unwrap();
    let tenant = liqo_auth::forge::tenant(
        &naples_id,
        &keys.public_key_pem(),
        &csr,
        &liqo_auth::Signature::from_bytes(signature),
        None,
    );
    let tenants = Api::<Tenant>::namespaced(tc.clone(), "liqo-tenant-naples");
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let message = liqo_testenv::eventually("the TenantRefused event", WAIT, || {
        let tc = tc.clone();
        async move {
            let events = Api::<Event>::namespaced(tc, "liqo-tenant-naples")
                .list(&ListParams::default())
                .await
                .ok()?;
            events
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("TenantRefused"))?
                .message
        }
    })
    .await;
    assert!(message.contains("does not verify"), "{message}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = tenants.get("naples").await.unwrap();
    assert!(t.status.and_then(|s| s.auth_params).is_none());
    let bindings = Api::<RoleBinding>::namespaced(tc.clone(), "liqo-tenant-naples")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        bindings.items.is_empty(),
        "no permission for a refused tenant"
    );
    // Cleaning up the refused Tenant (the finalizer is removed by the controller).
    liqoctl_ok(naples, &["unpeer", "--remote-kubeconfig", &turin_kc]);
    assert_clean(turin).await;

    // The peer is gone for good: --force cleans up locally.
    assert!(peer(naples, turin, &[]).status.success());
    let out = liqoctl(naples, &["unpeer", "--remote-cluster-id", "turin"]);
    assert!(
        !out.status.success(),
        "without --force a remote kubeconfig is needed"
    );
    drop(_m_turin);
    liqoctl_ok(
        naples,
        &["unpeer", "--force", "--remote-cluster-id", "turin"],
    );
    assert_clean(naples).await;
}
