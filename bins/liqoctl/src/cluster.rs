//! Connecting to clusters, kubectl style, with errors that say what to do.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use liqo_core::ids::ClusterId;

/// Where to find a cluster: kubeconfig file and context.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    pub(crate) kubeconfig: Option<PathBuf>,
    pub(crate) context: Option<String>,
    /// `local` or `remote`, for messages.
    pub(crate) role: &'static str,
}

/// A connected cluster.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) client: kube::Client,
    pub(crate) server: String,
    pub(crate) id: ClusterId,
    pub(crate) version: Option<String>,
    pub(crate) namespace: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Builds a client and checks that the API server answers and accepts the credentials.
pub(crate) async fn client(target: &Target) -> anyhow::Result<(kube::Client, String)> {
    let which = match &target.kubeconfig {
        Some(p) => p.display().to_string(),
        None => "the default kubeconfig ($KUBECONFIG or ~/.kube/config)".to_owned(),
    };
    let kc = match &target.kubeconfig {
        Some(p) => kube::config::Kubeconfig::read_from(p)
            .with_context(|| format!("cannot read the {} kubeconfig {which}", target.role))?,
        None => kube::config::Kubeconfig::read()
            .with_context(|| format!("cannot read the {} kubeconfig: {which}", target.role))?,
    };
    let options = kube::config::KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .with_context(|| format!("the {} kubeconfig {which} is not usable", target.role))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let client = kube::Client::try_from(config)
        .with_context(|| format!("cannot build a client for the {} cluster", target.role))?;
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => Ok((client, server)),
        Ok(Err(kube::Error::Api(s))) if s.code == 401 => Err(anyhow!(
            "the {} cluster ({server}) rejected the credentials of {which} (401 Unauthorized): \
             the certificate or token is wrong or expired; get a fresh kubeconfig",
            target.role
        )),
        Ok(Err(e)) => Err(anyhow!(
            "cannot reach the {} cluster at {server} ({e}): is it running and is the URL in \
             {which} right?",
            target.role
        )),
        Err(_) => Err(anyhow!(
            "the {} cluster at {server} did not answer within 10s: is it running and reachable?",
            target.role
        )),
    }
}

/// Connects and reads the cluster id written by liqo-controller-manager.
pub(crate) async fn connect(target: &Target, namespace: &str) -> anyhow::Result<Conn> {
    let (client, server) = client(target).await?;
    let (id, version) = liqo_auth::bootstrap::read_cluster_info(&client, namespace)
        .await
        .map_err(|e| match e {
            liqo_auth::Error::Kube {
                source: kube::Error::Api(s),
                ..
            } if s.code == 403 => anyhow!(
                "the {} kubeconfig may not read ConfigMap {namespace}/liqo-clusterid-configmap \
                 (403): use an administrator kubeconfig or one from `liqoctl generate \
                 peering-user`",
                target.role
            ),
            e => anyhow!(
                "the {} cluster ({server}) has no liqo-rs cluster id: {e}",
                target.role
            ),
        })?;
    Ok(Conn {
        client,
        server,
        id,
        version,
        namespace: namespace.to_owned(),
    })
}

/// Whether a kube error is a 404.
pub(crate) fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
