//! A virtual kubelet of your own: the shipped one's library
//! ([`liqo_virtual_kubelet::run`]) with one more reflector, for the `Backup` custom resource
//! of `examples/lib.rs` (its target prefixed with the provider's id in the twin namespace).
//! Run it where liqo-controller-manager would run `liqo-virtual-kubelet` (its
//! `--virtual-kubelet-binary` flag), with the same flags.
//!
//! ```sh
//! cargo run -p liqo-examples --example virtual_kubelet_with_backups -- --help
//! ```

use clap::Parser as _;
use liqo_examples::{Backup, BackupForge};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    liqo_virtual_kubelet::run(liqo_virtual_kubelet::Args::parse(), |reflectors| {
        reflectors.generic::<Backup, _, Backup>("backups", BackupForge)
    })
    .await
}
