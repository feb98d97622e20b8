//! Real nodes: real kubelets, containerd, runc, bridge CNI, kube-proxy and CoreDNS.
//!
//! - One cluster with a real node: a busybox HTTP server Deployment becomes Available with
//!   real processes; `kubectl logs`, `exec` and `port-forward` work; a pod reaches it through
//!   a ClusterIP Service by DNS name; a pod calls the API server with its ServiceAccount token
//!   through the `kubernetes` Service.
//! - Two clusters with identical pod CIDRs, a real node each, pods running in both with
//!   overlapping IPs; node addresses reachable across clusters, pod addresses not.
//! - Teardown, and a new start after a SIGKILLed owner, leave no process, mount, cgroup,
//!   namespace or link, and put the host sysctls back.
//!
//! Needs root; skipped otherwise, except under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{ListParams, LogParams, PostParams};
use liqo_testenv::kubectl::{kubectl, port_forward};
use liqo_testenv::{Cluster, ClusterConfig, eventually};

const WAIT: Duration = Duration::from_secs(120);

/// The tests share the host (the underlay bridge, the kubelet's sysctls): one at a time.
static HOST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root_or_skip(test: &str) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs root; CI is set, so it must not be skipped"
        );
        eprintln!("skipping {test}: needs root");
    }
    root
}

fn busybox() -> String {
    format!("localhost/liqo-rs/busybox:{}", liqo_testenv::image::TAG)
}

/// A pod running `script` with busybox on the real nodes; its logs once it ended.
async fn run_pod(cluster: &Cluster, name: &str, script: &str) -> (String, String) {
    run_command(cluster, name, &busybox(), &["sh", "-c", script]).await
}

/// A pod running `command` in `image`; its phase and logs once it ended.
async fn run_command(
    cluster: &Cluster,
    name: &str,
    image: &str,
    command: &[&str],
) -> (String, String) {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                "command": command}],
        },
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = eventually(&format!("pod {name} finished"), WAIT, || async {
        let p = pods.get(name).await.ok()?;
        let phase = p.status?.phase?;
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
    })
    .await;
    let logs = pods.logs(name, &LogParams::default()).await.unwrap();
    eprintln!("pod {name}: {phase}\n{logs}");
    (phase, logs)
}

async fn web(cluster: &Cluster, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "httpd", "image": busybox(), "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo web starting; exec httpd -f -v -p 8080 -h /www"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }]},
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(cluster.client(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(cluster.client(), "default")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    eventually("Deployment web Available", WAIT, || async {
        let d = deployments.get("web").await.ok()?;
        (d.status?.available_replicas? == replicas).then_some(())
    })
    .await;
}

async fn pod_ips(cluster: &Cluster, selector: &str) -> Vec<String> {
    Api::<Pod>::all(cluster.client())
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.status?.pod_ip)
        .collect()
}

/// What the real nodes of the host leave behind: processes naming `dir`, mounts under it,
/// node cgroups, node namespaces and the underlay bridge.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let marker = dir.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&marker) || cmdline.contains("/run/liqo-testenv/n-") {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&marker))
            .map(|l| format!("mount {l}")),
    );
    for h in ["memory", "cpu", "pids", "devices"] {
        if let Ok(entries) = std::fs::read_dir(format!("/sys/fs/cgroup/{h}")) {
            found.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("liqo-testenv-"))
                    .map(|e| format!("cgroup {}", e.path().display())),
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir("/run/liqo-testenv") {
        found.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("n-"))
                .map(|e| format!("socket directory {}", e.path().display())),
        );
    }
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    found.extend(
        String::from_utf8_lossy(&netns.stdout)
            .lines()
            .filter(|l| l.starts_with("ltn-"))
            .map(|l| format!("netns {l}")),
    );
    if std::process::Command::new("ip")
        .args(["link", "show", liqo_testenv::UNDERLAY_BRIDGE])
        .output()
        .unwrap()
        .status
        .success()
    {
        found.push(format!("link {}", liqo_testenv::UNDERLAY_BRIDGE));
    }
    found
}

fn sysctls() -> Vec<String> {
    [
        "vm/overcommit_memory",
        "kernel/panic",
        "kernel/panic_on_oops",
    ]
    .iter()
    .map(|k| std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_node_runs_pods_services_dns_and_in_cluster_api_calls() {
    if !root_or_skip("real nodes") {
        return;
    }
    let _host = HOST.lock().await;
    let before = sysctls();
    let cluster = Cluster::start(ClusterConfig::new("rn-one").nodes(0).real_nodes(1))
        .await
        .unwrap();
    let dir = cluster.dir().to_owned();
    web(&cluster, 2).await;

    // Real processes: the pods' httpd run on this host.
    let exec = kubectl(
        &cluster,
        &["exec", "deploy/web", "--", "cat", "/www/index.html"],
    )
    .await
    .unwrap();
    assert_eq!(exec.code, 0, "{}", exec.stderr);
    assert_eq!(exec.stdout.trim(), "hello from liqo-rs");
    let logs = kubectl(&cluster, &["logs", "deploy/web"]).await.unwrap();
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("web starting"), "{logs:?}");

    // port-forward: an HTTP GET through the forwarded port.
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let forward = port_forward(&cluster, "default", "deploy/web", 8080)
            .await
            .unwrap();
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", forward.port))
            .await
            .unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(WAIT, conn.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.contains("hello from liqo-rs"), "{answer}");
    }

    // A ClusterIP Service by DNS name (CoreDNS, kube-proxy).
    let (phase, logs) = run_pod(
        &cluster,
        "dns-client",
        // kube-proxy and CoreDNS learn of the new Service within moments: a few tries.
        "for i in $(seq 1 20); do timeout 3 wget -O- http://web.default.svc.cluster.local/ && exit 0; \
         sleep 1; done; exit 1",
    )
    .await;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(logs.contains("hello from liqo-rs"), "{logs}");

    // The API server through the kubernetes Service, as the pod's ServiceAccount.
    // (kubectl's in-cluster configuration: KUBERNETES_SERVICE_HOST, the projected token and
    // CA; TLS verified against the Service IP.)
    let (phase, logs) = run_command(
        &cluster,
        "api-client",
        &format!("localhost/liqo-rs/kubectl:{}", liqo_testenv::image::TAG),
        &[
            "/usr/local/bin/kubectl",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(
        logs.contains("system:serviceaccount:default:default"),
        "{logs}"
    );

    // liqo-rs's own binaries as images, with what they run.
    let target = liqo_rs_binaries();
    let images: Vec<_> = liqo_testenv::image::LIQO_RS_BINARIES
        .iter()
        .map(|b| liqo_testenv::image::liqo_rs(b, &target).unwrap())
        .collect();
    cluster.load_images(&images).await.unwrap();
    let tag = liqo_testenv::image::TAG;
    for binary in liqo_testenv::image::LIQO_RS_BINARIES {
        let (phase, logs) = run_command(
            &cluster,
            &format!("{binary}-version").replace("liqo-", ""),
            &format!("localhost/liqo-rs/{binary}:{tag}"),
            &[&format!("/usr/local/bin/{binary}"), "--version"],
        )
        .await;
        assert_eq!(phase, "Succeeded", "{binary}: {logs}");
        assert!(logs.contains(tag), "{binary}: {logs}");
    }
    let (phase, logs) = run_command(
        &cluster,
        "gateway-tools",
        &format!("localhost/liqo-rs/liqo-gateway:{tag}"),
        &["/usr/sbin/nft", "--version"],
    )
    .await;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(logs.contains("nftables"), "{logs}");

    drop(cluster);
    let left = leftovers(&dir);
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert_eq!(sysctls(), before, "host sysctls not restored");
}

/// The directory of the workspace's binaries (`target/debug`), built when missing.
fn liqo_rs_binaries() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .to_owned();
    let missing = liqo_testenv::image::LIQO_RS_BINARIES
        .iter()
        .any(|b| !dir.join(b).exists());
    if missing {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-q"]);
        for p in [
            "liqo-controller-manager",
            "liqo-virtual-kubelet",
            "liqo-gateway",
            "liqo-fabric",
            "liqoctl",
        ] {
            cmd.args(["-p", p]);
        }
        assert!(
            cmd.status().unwrap().success(),
            "building liqo-rs's binaries"
        );
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_with_identical_pod_cidrs_share_the_underlay_not_the_pods() {
    if !root_or_skip("real nodes in two clusters") {
        return;
    }
    let _host = HOST.lock().await;
    let cidr = "10.230.0.0/16".parse().unwrap();
    let clusters = Cluster::start_all(vec![
        ClusterConfig::new("rn-a")
            .nodes(0)
            .real_nodes(1)
            .pod_cidr(cidr),
        ClusterConfig::new("rn-b")
            .nodes(0)
            .real_nodes(1)
            .pod_cidr(cidr),
    ])
    .await
    .unwrap();
    let (a, b) = (&clusters[0], &clusters[1]);
    web(a, 1).await;
    web(b, 2).await;
    // CoreDNS is each node's first pod: the same address in both clusters.
    let dns_a = pod_ips(a, "k8s-app=kube-dns").await;
    let dns_b = pod_ips(b, "k8s-app=kube-dns").await;
    assert_eq!(dns_a, dns_b, "overlapping pod IPs expected");
    let ips_a = pod_ips(a, "app=web").await;
    let ips_b = pod_ips(b, "app=web").await;
    let only_b: Vec<&String> = ips_b.iter().filter(|ip| !ips_a.contains(ip)).collect();
    assert!(!only_b.is_empty(), "{ips_a:?} {ips_b:?}");

    let node_ip = |c: &Cluster| {
        let c = c.client();
        async move {
            let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(c)
                .list(&ListParams::default().labels(liqo_testenv::REAL_NODE_LABEL))
                .await
                .unwrap();
            nodes.items[0]
                .status
                .as_ref()
                .unwrap()
                .addresses
                .as_ref()
                .unwrap()[0]
                .address
                .clone()
        }
    };
    let node_b = node_ip(b).await;
    // From a pod of a: b's node answers (its kubelet's port), b's pods do not.
    let (phase, logs) = run_pod(
        a,
        "underlay",
        &format!(
            "echo | nc -w 3 {node_b} 10250 && echo node-reachable; \
             if timeout 3 wget -qO- http://{}:8080/ ; then echo pod-reachable; fi; true",
            only_b[0]
        ),
    )
    .await;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(logs.contains("node-reachable"), "{logs}");
    assert!(!logs.contains("pod-reachable"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_owner_leaves_nothing_the_next_start_does_not_remove() {
    if !root_or_skip("real-node clean-up after SIGKILL") {
        return;
    }
    let _host = HOST.lock().await;
    let before = sysctls();
    let exe = env!("CARGO_BIN_EXE_liqo-testenv");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "up",
            "--names",
            "rn-kill",
            "--nodes",
            "0",
            "--real-nodes",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncBufReadExt as _;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(Duration::from_secs(240), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("kubeconfig:") {
                    return;
                }
            }
            panic!("liqo-testenv up ended before the cluster was ready");
        })
        .await
        .expect("liqo-testenv up starts a real node");
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    // What a SIGKILLed owner leaves: its node's namespace, shims and containers, mounts.
    let dir = liqo_testenv::default_base_dir().join("rn-kill");
    let stale = leftovers(&dir);
    assert!(
        !stale.is_empty(),
        "a SIGKILLed owner is expected to leave state behind"
    );
    eprintln!("left by the killed owner: {stale:#?}");
    // The next start of the same cluster removes what the dead owner left, and its own
    // teardown leaves nothing.
    let cluster = Cluster::start(ClusterConfig::new("rn-kill").nodes(0).real_nodes(1))
        .await
        .unwrap();
    assert_eq!(cluster.dir(), dir);
    drop(cluster);
    let left = leftovers(&dir);
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert_eq!(sysctls(), before, "host sysctls not restored");
}
