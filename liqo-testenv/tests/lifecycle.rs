//! `liqo-testenv up` as users run it: it prints kubeconfig paths that kubectl can use, stops
//! everything on Ctrl-C, and leaves nothing running when it is killed outright.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use liqo_testenv::Binaries;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liqo-testenv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

/// Starts `liqo-testenv up` and returns once it prints that the clusters are ready, with the
/// kubeconfig paths it printed.
fn up(base: &Path, name: &str) -> (Child, Vec<PathBuf>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liqo-testenv"))
        .args(["up", "--names", name, "--nodes", "2"])
        .env("LIQO_TESTENV_DIR", base)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("liqo-testenv runs");
    let stdout = child.stdout.take().unwrap();
    let mut kubeconfigs = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        println!("up: {line}");
        if let Some(path) = line.split("kubeconfig: ").nth(1) {
            kubeconfigs.push(PathBuf::from(path.trim()));
        }
        if line.contains("Press Ctrl-C") {
            return (child, kubeconfigs);
        }
    }
    panic!(
        "liqo-testenv up exited before the clusters were ready: {:?}",
        child.wait()
    );
}

fn wait_gone(dir: &Path, within: Duration) {
    let start = Instant::now();
    loop {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            return;
        }
        assert!(start.elapsed() < within, "processes left behind: {left:?}");
        #[allow(clippy::disallowed_methods)] // a plain #[test], no async runtime to block
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn up_prints_kubeconfigs_kubectl_can_use_and_stops_on_ctrl_c() {
    let base = scratch("up-int");
    let (child, kubeconfigs) = up(&base, "life-int");
    assert_eq!(kubeconfigs, vec![base.join("life-int/kubeconfig")]);
    assert_eq!(processes_mentioning(&base).len(), 5, "five components run");

    let kubectl = Binaries::discover().unwrap().path("kubectl");
    let out = Command::new(kubectl)
        .args(["--kubeconfig"])
        .arg(&kubeconfigs[0])
        .args(["get", "nodes", "--no-headers"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ready: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
        .collect();
    assert_eq!(ready.len(), 2, "both kwok nodes Ready:\n{text}");
    assert!(
        text.contains("life-int-node-0") && text.contains("life-int-node-1"),
        "{text}"
    );

    // Ctrl-C, as a terminal sends it.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "liqo-testenv up exits cleanly on Ctrl-C: {exit}"
    );
    wait_gone(&base, Duration::from_secs(5));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn killed_up_process_takes_its_clusters_with_it() {
    let base = scratch("up-kill");
    let (mut child, _) = up(&base, "life-kill");
    assert_eq!(processes_mentioning(&base).len(), 5);
    child.kill().unwrap(); // SIGKILL: no destructor runs, the parent-death signal must act
    child.wait().unwrap();
    wait_gone(&base, Duration::from_secs(10));
    std::fs::remove_dir_all(&base).unwrap();
}
