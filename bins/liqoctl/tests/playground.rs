//! `make playground` as root, with no hand step: two clusters, a controller-manager each that
//! detects its pod and service CIDRs and starts the gateways of the peering in network
//! namespaces, `liqoctl peer` with networking, and `liqoctl info` on both clusters reporting
//! NETWORKING Established; when it stops, no gateway, namespace or bridge is left behind.
//!
//! Needs root (network namespaces); skipped otherwise, except under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

#[path = "../../../liqo-net/tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod netsupport;

use std::process::Command;

/// The row of `peer` in a `liqoctl info` table, as columns.
fn row<'a>(output: &'a str, peer: &str, role: &str) -> Option<Vec<&'a str>> {
    output
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&peer) && cols.get(1) == Some(&role))
}

#[test]
fn the_playground_peers_with_networking_and_cleans_up() {
    if !netsupport::requirements_met("the playground with networking", &["ip"], &["/dev/net/tun"]) {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg("hack/playground.sh")
        .current_dir(&root)
        .env("PLAYGROUND_EXIT", "1")
        .env("PLAYGROUND_NETWORKING", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the playground failed");
    for (peer, role) in [("milan", "Provider"), ("rome", "Consumer")] {
        let cols = row(&stdout, peer, role)
            .unwrap_or_else(|| panic!("no {peer} {role} row in liqoctl info"));
        assert_eq!(
            &cols[2..5],
            ["Established", "Established", "Established"],
            "{peer}: {cols:?}"
        );
    }
    assert!(
        stdout.contains("nginx-remote   1/1     Running"),
        "{stdout}"
    );
    // Nothing left: the controller-managers stopped their gateways on the way out.
    let namespaces = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !namespaces.contains("liqo-gw-"),
        "left behind: {namespaces}"
    );
    assert!(
        !Command::new("ip")
            .args(["link", "show", "liqo-gw-br"])
            .output()
            .unwrap()
            .status
            .success(),
        "the gateway bridge was left behind"
    );
}
