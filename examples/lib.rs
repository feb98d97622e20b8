//! Runnable examples of the liqo-rs crates: see the `[[example]]` targets of this package.
//! What several examples share lives here: the `Backup` custom resource and its [`Forge`].

use kube::CustomResource;
use liqo_reflect::forge::{Forge, ForgeContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A backup schedule: which volume, how often, where to.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(group = "example.liqo.io", version = "v1", kind = "Backup", namespaced)]
pub struct BackupSpec {
    /// Name of the PersistentVolumeClaim to back up.
    pub claim: String,
    /// Cron schedule.
    pub schedule: String,
    /// Bucket URL; in the remote cluster, backups go to a cluster-specific prefix.
    pub target: String,
}

/// The translation: same schedule, target prefixed with the cluster the backup runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupForge;

impl Forge<Backup> for BackupForge {
    fn remote(&self, local: &Backup, ctx: &ForgeContext) -> Option<Backup> {
        let mut spec = local.spec.clone();
        spec.target = format!(
            "{}/{}",
            local.spec.target.trim_end_matches('/'),
            ctx.remote_cluster
        );
        let mut twin = Backup::new(&local.metadata.name.clone()?, spec);
        twin.metadata.labels = local.metadata.labels.clone();
        Some(twin)
    }
}
