//! The liqo-rs fabric agent: in-cluster overlay from each node to the gateways.

use clap::Parser;

/// The liqo-rs fabric agent: in-cluster overlay from each node to the gateways.
///
/// This binary is a skeleton: the capability it will provide is tracked in the project's issues.
#[derive(Debug, Parser)]
#[command(name = "liqo-fabric", version, about, long_about = None)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    eprintln!(
        "liqo-fabric: not implemented yet in this version of liqo-rs; see the README's status table"
    );
    std::process::exit(2)
}
