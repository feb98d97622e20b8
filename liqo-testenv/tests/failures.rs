//! Bad input: a wrong binaries directory, a taken port, a component that crashes at start.
//! Each is refused with an error that names the cause (and the log file), and leaves no
//! process behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{
    net::{Ipv4Addr, TcpListener},
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use liqo_testenv::{Binaries, Cluster, ClusterConfig, Error, REQUIRED};

/// Pids of live processes whose command line mentions `dir` (every component's does).
fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let marker = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liqo-testenv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn missing_binaries_directory_is_named() {
    let err = Cluster::start(ClusterConfig::new("bad-bins").bin_dir("/nonexistent/k8s/bin"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BinariesNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/k8s/bin") && msg.contains("hack/k8s-binaries.sh"),
        "{msg}"
    );
}

#[tokio::test]
async fn taken_apiserver_port_is_refused_before_anything_starts() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = scratch("port");
    let err = Cluster::start(
        ClusterConfig::new("port-taken")
            .apiserver_port(port)
            .base_dir(&base),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::PortInUse { port: p, .. } if p == port),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()));
    assert_eq!(
        processes_mentioning(&base),
        Vec::<u32>::new(),
        "nothing started"
    );
    std::fs::remove_dir_all(&base).unwrap();
}

#[tokio::test]
async fn crashing_apiserver_names_its_log_and_leaves_nothing_running() {
    let real = Binaries::discover().expect("Kubernetes binaries (run hack/k8s-binaries.sh)");
    let bins = scratch("crash-bins");
    for name in REQUIRED {
        if name == "kube-apiserver" {
            let script = bins.join(name);
            std::fs::write(
                &script,
                "#!/bin/sh\necho 'fatal: simulated crash at start' >&2\nexit 3\n",
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            symlink(real.path(name), bins.join(name)).unwrap();
        }
    }
    let base = scratch("crash");
    let err = Cluster::start(ClusterConfig::new("crash").bin_dir(&bins).base_dir(&base))
        .await
        .unwrap_err();
    match &err {
        Error::ComponentExited {
            component,
            log,
            tail,
            ..
        } => {
            assert_eq!(component.as_str(), "kube-apiserver");
            assert_eq!(log, &base.join("crash/kube-apiserver.log"));
            assert!(tail.contains("simulated crash"), "{tail}");
        }
        other => panic!("expected ComponentExited, got {other}"),
    }
    assert!(err.to_string().contains("kube-apiserver.log"), "{err}");
    // etcd had started; it must be gone too.
    assert_eq!(
        processes_mentioning(&base),
        Vec::<u32>::new(),
        "processes left behind"
    );
    std::fs::remove_dir_all(&base).unwrap();
    std::fs::remove_dir_all(&bins).unwrap();
}
