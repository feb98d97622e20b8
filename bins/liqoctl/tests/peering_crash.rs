//! Killing the liqo-controller-manager of either side (SIGKILL, as a crash) repeatedly while
//! `liqoctl peer` runs: the peering still converges, with nothing duplicated. Then a
//! least-privilege peering user (`liqoctl generate peering-user`) is enough to peer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use liqo_core::api::authentication::v1beta1::{Identity, ResourceSlice, Tenant};
use liqo_core::api::core::v1beta1::ForeignCluster;
use liqo_core::api::offloading::v1beta1::{Quota, VirtualNode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peering_converges_across_controller_crashes() {
    let clusters = clusters(&["pb-genoa", "pb-bari"]).await;
    let (genoa, bari) = (&clusters[0], &clusters[1]);
    let mut m_genoa = manager(genoa, "genoa", &[]);
    let mut m_bari = manager(bari, "bari", &[]);
    ready(genoa).await;
    ready(bari).await;
    // The provider's manager is down when peering starts.
    m_bari.kill();

    let bari_kc = bari.kubeconfig_path().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_liqoctl"))
        .args(["--kubeconfig", genoa.kubeconfig_path().to_str().unwrap()])
        .args(["peer", "--remote-kubeconfig", &bari_kc, "--skip-networking"])
        .args(["--timeout", "90s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill and restart the managers in turn, at whatever step the peering is.
    let mut kills = 0;
    for round in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if round % 2 == 0 {
            m_bari.kill();
            m_bari = manager(bari, "bari", &[]);
        } else {
            m_genoa.kill();
            m_genoa = manager(genoa, "genoa", &[]);
        }
        kills += 1;
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "peering did not converge after {kills} kills"
    );

    // Nothing duplicated, every piece in place.
    assert_eq!(
        names::<Tenant>(bari, None).await,
        ["liqo-tenant-genoa/genoa"]
    );
    assert_eq!(
        names::<Identity>(genoa, None).await,
        [
            "liqo-tenant-bari/controlplane-bari",
            "liqo-tenant-bari/resourceslice-bari"
        ]
    );
    assert_eq!(names::<ResourceSlice>(genoa, None).await.len(), 1);
    assert_eq!(names::<ResourceSlice>(bari, None).await.len(), 1);
    assert_eq!(names::<VirtualNode>(genoa, None).await.len(), 1);
    assert_eq!(names::<Quota>(bari, None).await.len(), 1);
    let left: Vec<String> = liqo_leftovers(bari)
        .await
        .into_iter()
        .filter(|l| l.starts_with("CSR") || l.starts_with("RoleBinding"))
        .collect();
    assert_eq!(
        left,
        ["RoleBinding liqo-remote-controlplane-genoa"],
        "no CSR left over"
    );
    let fc = Api::<ForeignCluster>::all(genoa.client())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(fc.items.len(), 1);

    // Unpeer, then peer again with a least-privilege user generated on the provider.
    let genoa_kc = genoa.kubeconfig_path().display().to_string();
    let _ = genoa_kc;
    liqoctl_ok(genoa, &["unpeer", "--remote-kubeconfig", &bari_kc]);
    let user_kc = liqoctl_ok(
        bari,
        &["generate", "peering-user", "--consumer-cluster-id", "genoa"],
    );
    assert!(user_kc.contains("liqo-peer-user-genoa-"), "{user_kc}");
    let path = genoa.dir().join("bari-peering-user.kubeconfig");
    std::fs::write(&path, &user_kc).unwrap();
    // The user can peer...
    let out = liqoctl(
        genoa,
        &[
            "peer",
            "--remote-kubeconfig",
            path.to_str().unwrap(),
            "--skip-networking",
        ],
    );
    assert!(out.status.success());
    // ...but not read anything else on the provider.
    let as_user = liqo_auth::kubeconfig::client_from_yaml(&user_kc)
        .await
        .unwrap();
    let forbidden = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_user, "kube-system")
        .list(&ListParams::default())
        .await;
    assert!(matches!(forbidden, Err(kube::Error::Api(s)) if s.code == 403));
    liqoctl_ok(
        genoa,
        &["unpeer", "--remote-kubeconfig", path.to_str().unwrap()],
    );
    liqo_testenv::eventually("no Tenant left on bari", WAIT, || async {
        names::<Tenant>(bari, None).await.is_empty().then_some(())
    })
    .await;
}
