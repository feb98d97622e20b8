//! The liqo-rs virtual kubelet: one per VirtualNode, offloads pods to a provider cluster.

use clap::Parser;

/// The liqo-rs virtual kubelet: one per VirtualNode, offloads pods to a provider cluster.
///
/// This binary is a skeleton: the capability it will provide is tracked in the project's issues.
#[derive(Debug, Parser)]
#[command(name = "liqo-virtual-kubelet", version, about, long_about = None)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    eprintln!(
        "liqo-virtual-kubelet: not implemented yet in this version of liqo-rs; see the README's status table"
    );
    std::process::exit(2)
}
