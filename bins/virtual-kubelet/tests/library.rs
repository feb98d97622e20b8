//! A virtual kubelet built from the library with one more reflector
//! (`examples/virtual_kubelet_with_backups.rs`): the `Backup` custom resource written in an
//! offloaded namespace appears, translated, in its twin namespace on the provider, next to
//! what the built-in reflectors do (a ConfigMap).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt as _};
use liqo_examples::{Backup, BackupSpec};
use liqo_testenv::eventually;
use support::{WAIT, accept_mapping, setup, start_virtual_kubelet_program};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_kubelet_from_the_library_runs_an_extra_reflector() {
    let (rome, milan) = setup("lof-lib-rome", "lof-lib-milan", 1).await;
    for cluster in [&rome, &milan] {
        cluster.install_crds([Backup::crd()]).await.unwrap();
    }
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "liqo-examples",
            "--example",
            "virtual_kubelet_with_backups",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "building the example");
    let exe = std::env::current_exe().unwrap();
    let program = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/virtual_kubelet_with_backups");
    let _vk = start_virtual_kubelet_program(&rome, &program, &[]);

    let backup = Backup::new(
        "nightly",
        BackupSpec {
            claim: "data".into(),
            schedule: "0 3 * * *".into(),
            target: "s3://backups".into(),
        },
    );
    Api::<Backup>::namespaced(rome.client(), "demo")
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let config: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"k": "v"},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(rome.client(), "demo")
        .patch(
            "settings",
            &PatchParams::apply("test"),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
    let twin = eventually("the Backup twin on milan", WAIT, || async {
        Api::<Backup>::namespaced(milan.client(), "demo-rome")
            .get_opt("nightly")
            .await
            .ok()?
    })
    .await;
    assert_eq!(twin.spec.target, "s3://backups/milan");
    eventually("the ConfigMap twin on milan", WAIT, || async {
        Api::<ConfigMap>::namespaced(milan.client(), "demo-rome")
            .get_opt("settings")
            .await
            .ok()?
    })
    .await;
}
