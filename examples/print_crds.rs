//! Prints the name of every Liqo CustomResourceDefinition that liqo-core defines, with its
//! group, version, kind and scope.
//!
//! ```sh
//! cargo run -p liqo-examples --example print_crds
//! ```

fn main() {
    for crd in liqo_core::api::crds() {
        let spec = &crd.spec;
        let versions: Vec<&str> = spec.versions.iter().map(|v| v.name.as_str()).collect();
        println!(
            "{:<55} {:<28} {:<10} {}",
            crd.metadata.name.as_deref().unwrap_or_default(),
            spec.names.kind,
            versions.join(","),
            spec.scope
        );
    }
}
