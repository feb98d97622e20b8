//! `liqo-fabric`: the library's [`run`](liqo_fabric::run).

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    liqo_fabric::run(liqo_fabric::Args::parse()).await
}
