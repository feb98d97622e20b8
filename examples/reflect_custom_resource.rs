//! Reflects a custom resource of your own between two clusters with the liqo-rs engine.
//!
//! A `Backup` schedule written in the local cluster appears, translated, in the twin namespace
//! of the remote cluster, alongside the built-in reflectors (ConfigMaps, Secrets, ...).
//!
//! ```sh
//! # two clusters, e.g. from `make playground`
//! LOCAL_KUBECONFIG=target/testenv/rome/kubeconfig REMOTE_KUBECONFIG=target/testenv/milan/kubeconfig \
//!   cargo run -p liqo-examples --example reflect_custom_resource
//! ```
//! The example installs the Backup CRD in both clusters, creates namespaces `demo` (local) and
//! `demo-rome` (remote), starts the reflection and writes one Backup; Ctrl-C stops it.

use kube::{
    Api, Client, CustomResourceExt,
    api::{Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use liqo_core::ids::NamespacePair;
use liqo_reflect::{Clusters, ReflectionManager};

use liqo_examples::{Backup, BackupForge, BackupSpec};

async fn client(var: &str) -> anyhow::Result<Client> {
    let path = std::env::var(var).map_err(|_| anyhow::anyhow!("set {var} to a kubeconfig path"))?;
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

async fn prepare(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = Backup::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply("liqo-example").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            namespace,
            &PatchParams::apply("liqo-example"),
            &Patch::Apply(&ns),
        )
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (local, remote) = (
        client("LOCAL_KUBECONFIG").await?,
        client("REMOTE_KUBECONFIG").await?,
    );
    prepare(&local, "demo").await?;
    prepare(&remote, "demo-rome").await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await; // let the CRDs be established

    let manager = ReflectionManager::builder(Clusters {
        local: local.clone(),
        remote: remote.clone(),
        local_id: "rome".parse()?,
        remote_id: "milan".parse()?,
    })
    .with_default_reflectors()
    .generic::<Backup, _, Backup>("backups", BackupForge)
    .build();
    manager
        .start_namespace(&NamespacePair::new("demo", "demo-rome")?)
        .await?;

    let backup = Backup::new(
        "nightly",
        BackupSpec {
            claim: "data".into(),
            schedule: "0 3 * * *".into(),
            target: "s3://backups".into(),
        },
    );
    let _ = Api::<Backup>::namespaced(local, "demo")
        .create(&PostParams::default(), &backup)
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let twin = Api::<Backup>::namespaced(remote, "demo-rome")
        .get("nightly")
        .await?;
    println!("remote twin: target {}", twin.spec.target);
    println!("{}", manager.metrics().render());
    println!("reflecting until Ctrl-C");
    liqo_core::runtime::shutdown_signal().await;
    Ok(())
}
