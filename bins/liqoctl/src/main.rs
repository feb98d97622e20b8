//! liqoctl: peer Kubernetes clusters and offload namespaces with liqo-rs.

use clap::{Parser, Subcommand};

/// liqoctl: peer Kubernetes clusters and offload namespaces with liqo-rs.
///
/// Most commands are not implemented yet in this version; see the README's status table.
#[derive(Debug, Parser)]
#[command(name = "liqoctl", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the liqoctl version.
    Version,
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Version => println!("liqoctl {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
