//! The liqo-rs gateway: tunnel, policy routing and NAT towards a peer cluster.

use clap::Parser;

/// The liqo-rs gateway: tunnel, policy routing and NAT towards a peer cluster.
///
/// This binary is a skeleton: the capability it will provide is tracked in the project's issues.
#[derive(Debug, Parser)]
#[command(name = "liqo-gateway", version, about, long_about = None)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    eprintln!(
        "liqo-gateway: not implemented yet in this version of liqo-rs; see the README's status table"
    );
    std::process::exit(2)
}
