//! The ServiceAccount reflector on two real control planes (rome reflects into milan): every
//! local service account gets a token Secret in the remote twin namespace, the token really
//! authenticates against rome's API server as that service account, a token due for refresh
//! is replaced, the Secret goes with its service account, and a remote Secret the reflector
//! does not own is never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::time::Duration;

use k8s_openapi::{
    api::{
        authentication::v1::SelfSubjectReview,
        core::v1::{ConfigMap, Namespace, Secret, ServiceAccount},
        events::v1::Event,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use liqo_core::{
    ids::NamespacePair,
    labels::reflection::{DESTINATION, ORIGIN, SERVICE_ACCOUNT_EXPIRATION, SERVICE_ACCOUNT_NAME},
};
use liqo_reflect::{
    Clusters, Reflector, ReflectorConfig,
    metrics::Registry,
    serviceaccount::{ServiceAccountReflector, secret_name},
};
use liqo_testenv::{Cluster, ClusterConfig, eventually};
use serde_json::json;

const LOCAL_NS: &str = "demo";
const REMOTE_NS: &str = "demo-rome";
const WAIT: Duration = Duration::from_secs(30);

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

fn data(secret: &Secret, key: &str) -> String {
    let bytes = &secret.data.as_ref().unwrap()[key].0;
    String::from_utf8(bytes.clone()).unwrap()
}

fn expiration(secret: &Secret) -> Timestamp {
    secret.annotations()[SERVICE_ACCOUNT_EXPIRATION]
        .parse()
        .unwrap()
}

/// Whom the local API server at `url` takes the bearer of the token in `secret` for, trusting
/// only the CA bundle in the same Secret.
async fn whoami(url: &str, secret: &Secret) -> String {
    let kubeconfig: Kubeconfig = serde_json::from_value(json!({
        "clusters": [{"name": "origin", "cluster": {
            "server": url,
            // A ByteString serializes as base64, as kubeconfigs want it.
            "certificate-authority-data": secret.data.as_ref().unwrap()["ca.crt"],
        }}],
        "users": [{"name": "offloaded", "user": {"token": data(secret, "token")}}],
        "contexts": [{"name": "offloaded", "context": {"cluster": "origin", "user": "offloaded"}}],
        "current-context": "offloaded",
    }))
    .unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default()
}

/// The Secret in `api` called `name` once it holds a token.
async fn token_secret(api: &Api<Secret>, name: &str) -> Secret {
    eventually(&format!("the token Secret {name}"), WAIT, || async {
        api.get_opt(name)
            .await
            .unwrap()
            .filter(|s| s.data.as_ref().is_some_and(|d| d.contains_key("token")))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_get_working_tokens_in_the_remote_namespace() {
    let mut clusters = Cluster::start_all(vec![
        ClusterConfig::new("sa-rome").nodes(0),
        ClusterConfig::new("sa-milan").nodes(0),
    ])
    .await
    .unwrap();
    let milan = clusters.pop().unwrap();
    let rome = clusters.pop().unwrap();
    let (local, remote) = (rome.client(), milan.client());
    create(
        &Api::<Namespace>::all(local.clone()),
        json!({"metadata": {"name": LOCAL_NS}}),
    )
    .await;
    create(
        &Api::<Namespace>::all(remote.clone()),
        json!({"metadata": {"name": REMOTE_NS}}),
    )
    .await;

    let registry = Registry::default();
    let reflector = ServiceAccountReflector::new(
        Clusters {
            local: local.clone(),
            remote: remote.clone(),
            local_id: "rome".parse().unwrap(),
            remote_id: "milan".parse().unwrap(),
        },
        ReflectorConfig::default(),
        &registry,
    );
    assert_eq!(reflector.name(), "serviceaccounts");
    let pair = NamespacePair::new(LOCAL_NS, REMOTE_NS).unwrap();
    reflector.start_namespace(&pair).await.unwrap();

    let local_sas: Api<ServiceAccount> = Api::namespaced(local.clone(), LOCAL_NS);
    let remote_secrets: Api<Secret> = Api::namespaced(remote.clone(), REMOTE_NS);
    create(&local_sas, json!({"metadata": {"name": "app"}})).await;

    // The `default` service account (made by the controller manager) and `app` both get one.
    let default = token_secret(&remote_secrets, &secret_name("default")).await;
    let app = token_secret(&remote_secrets, &secret_name("app")).await;
    assert_eq!(app.name_any(), "app-liqo-token");
    assert_eq!(app.type_.as_deref(), Some("Opaque"));
    assert_eq!(app.labels()[ORIGIN], "rome");
    assert_eq!(app.labels()[DESTINATION], "milan");
    assert_eq!(app.labels()[SERVICE_ACCOUNT_NAME], "app");
    assert_eq!(data(&app, "namespace"), LOCAL_NS);
    let root_ca = Api::<ConfigMap>::namespaced(local.clone(), LOCAL_NS)
        .get("kube-root-ca.crt")
        .await
        .unwrap();
    assert_eq!(data(&app, "ca.crt"), root_ca.data.unwrap()["ca.crt"]);
    let left = expiration(&app).duration_since(Timestamp::now()).as_secs();
    assert!((1800..=3700).contains(&left), "expires in {left}s");

    // The tokens are rome's: its API server authenticates them, through its own CA.
    let url = rome.apiserver_url();
    assert_eq!(
        whoami(url, &app).await,
        format!("system:serviceaccount:{LOCAL_NS}:app")
    );
    assert_eq!(
        whoami(url, &default).await,
        format!("system:serviceaccount:{LOCAL_NS}:default")
    );

    // A token past its refresh time is replaced (here made so by rewriting its expiration).
    let patch =
        json!({"metadata": {"annotations": {SERVICE_ACCOUNT_EXPIRATION: "2020-01-01T00:00:00Z"}}});
    remote_secrets
        .patch(
            &secret_name("app"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let refreshed = eventually("the refreshed token", WAIT, || async {
        let secret = remote_secrets.get(&secret_name("app")).await.unwrap();
        (expiration(&secret) > Timestamp::now()).then_some(secret)
    })
    .await;
    assert_eq!(
        whoami(url, &refreshed).await,
        format!("system:serviceaccount:{LOCAL_NS}:app")
    );

    // The Secret goes with its service account.
    local_sas
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deletion of the token Secret", WAIT, || async {
        remote_secrets
            .get_opt(&secret_name("app"))
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // A remote Secret with the same name but not made by the reflector is left alone, and the
    // conflict is reported on the local service account.
    let intruder = create(
        &remote_secrets,
        json!({"metadata": {"name": secret_name("intruder")}, "stringData": {"owner": "milan"}}),
    )
    .await;
    create(&local_sas, json!({"metadata": {"name": "intruder"}})).await;
    let events: Api<Event> = Api::namespaced(local.clone(), LOCAL_NS);
    let note = eventually("a FailedSATokensReflection event", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("FailedSATokensReflection")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("intruder")
            })
            .and_then(|e| e.note)
    })
    .await;
    assert!(note.contains("not managed by liqo"), "{note}");
    local_sas
        .delete("intruder", &DeleteParams::default())
        .await
        .unwrap();
    // Something observable after the deletion has been handled: another account's Secret.
    create(&local_sas, json!({"metadata": {"name": "late"}})).await;
    token_secret(&remote_secrets, &secret_name("late")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = remote_secrets.get(&secret_name("intruder")).await.unwrap();
    assert_eq!(still.uid(), intruder.uid());
    assert_eq!(still.data, intruder.data);
    assert_eq!(still.labels(), intruder.labels());

    let metrics = registry.render();
    assert!(
        !metrics.contains("liqo_reflection_items_total{reflector=\"serviceaccounts\"} 0"),
        "{metrics}"
    );

    // Stopped, the reflector writes nothing more.
    reflector.stop_namespace(&pair).await.unwrap();
    create(&local_sas, json!({"metadata": {"name": "after-stop"}})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        remote_secrets
            .get_opt(&secret_name("after-stop"))
            .await
            .unwrap()
            .is_none()
    );
}
