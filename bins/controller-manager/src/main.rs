//! The liqo-rs controller manager: peering, IPAM, networking and offloading controllers.

use clap::Parser;

/// The liqo-rs controller manager: peering, IPAM, networking and offloading controllers.
///
/// This binary is a skeleton: the capability it will provide is tracked in the project's issues.
#[derive(Debug, Parser)]
#[command(name = "liqo-controller-manager", version, about, long_about = None)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    eprintln!(
        "liqo-controller-manager: not implemented yet in this version of liqo-rs; see the README's status table"
    );
    std::process::exit(2)
}
