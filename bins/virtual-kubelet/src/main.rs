//! `liqo-virtual-kubelet`: the library's [`run`](liqo_virtual_kubelet::run) with the built-in
//! reflectors.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    liqo_virtual_kubelet::run(liqo_virtual_kubelet::Args::parse(), |reflectors| reflectors).await
}
