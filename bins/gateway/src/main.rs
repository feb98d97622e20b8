//! `liqo-gateway`: the library's [`run`](liqo_gateway::run) with the backend of `--backend`.

use clap::Parser as _;

fn main() {
    let args = liqo_gateway::Args::parse();
    match liqo_gateway::shipped_backend(&args) {
        Ok(backend) => liqo_gateway::main_with(args, backend),
        Err(e) => {
            eprintln!("liqo-gateway: {e:#}");
            std::process::exit(1);
        }
    }
}
