//! `liqo-controller-manager`: the library's [`run`](liqo_controller_manager::run) with the
//! shipped plug-ins.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = liqo_controller_manager::Args::parse();
    liqo_controller_manager::run(args, liqo_controller_manager::Plugins::default()).await
}
