//! Kubernetes clients from the `--kubeconfig` flag every liqo-rs binary takes.

use std::path::Path;

use crate::error::{Error, Result};

/// The client configuration of the kubeconfig at `path` (its current context), or, without a
/// path, the usual places in kube's order: `KUBECONFIG`, `~/.kube/config`, the in-cluster
/// service account.
///
/// Errors name the file and say what to do.
///
/// ```
/// # async fn demo() {
/// let error = liqo_core::runtime::kube_config(Some("/nonexistent/kubeconfig".as_ref()))
///     .await
///     .unwrap_err();
/// assert!(error.to_string().contains("/nonexistent/kubeconfig"));
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo());
/// ```
pub async fn kube_config(path: Option<&Path>) -> Result<kube::Config> {
    let kubeconfig_error = |what: String| {
        move |e: kube::config::KubeconfigError| Error::Kubeconfig {
            what,
            source: Box::new(e),
        }
    };
    match path {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(
                kubeconfig_error(format!("reading kubeconfig {}", path.display())),
            )?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(kubeconfig_error(format!(
                "loading kubeconfig {}",
                path.display()
            )))
        }
        None => kube::Config::infer().await.map_err(|e| Error::Kubeconfig {
            what: "no kubeconfig found: pass --kubeconfig or set KUBECONFIG".to_owned(),
            source: Box::new(e),
        }),
    }
}

/// A client from [`kube_config`].
pub async fn kube_client(path: Option<&Path>) -> Result<kube::Client> {
    let config = kube_config(path).await?;
    kube::Client::try_from(config).map_err(|e| Error::Kubeconfig {
        what: "building the Kubernetes client".to_owned(),
        source: Box::new(e),
    })
}
