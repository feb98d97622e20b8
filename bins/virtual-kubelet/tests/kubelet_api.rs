//! `kubectl logs`, `kubectl exec` and `kubectl attach` on offloaded pods, with the real kubectl
//! against the home API server: the API server calls the virtual kubelet's HTTPS kubelet API
//! (the Node's InternalIP and kubelet port; exec/attach over WebSockets, which kube-apiserver
//! 1.36 proxies as they are because the virtual Node declares `ExtendWebSocketsToKubelet`),
//! which makes the same request to the provider's API server for the twin pod; the provider's
//! API server asks kwok. liqo-testenv configures kwok to serve known log lines for every
//! container (`ClusterLogs`), to follow the same file for attach (`ClusterAttach`) and to run
//! exec commands on the host (`ClusterExec`), so what comes back is real output of the whole
//! path. kwok never closes a command's stdin and reports exit codes as internal errors
//! ("exit status N"): stdin is tested with a command that exits by itself, and a failing
//! command with kwok's message (see docs/offloading.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, LogParams, PostParams};
use liqo_core::runtime::Shutdown;
use liqo_reflect::shadowpod;
use liqo_testenv::eventually;
use serde_json::json;
use support::{NODE, TENANT_NS, WAIT, accept_mapping, setup};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

/// Runs the real kubectl against `kubeconfig` with `args` and `stdin`; (exit code, stdout,
/// stderr). A kubectl that does not finish within a minute fails the test (a hang is a bug).
async fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let binaries = liqo_testenv::Binaries::discover().unwrap();
    let mut child = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish"))
        .unwrap();
    let result = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("kubectl {args:?} -> {result:?}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_on_offloaded_pods() {
    let (rome, milan) = setup("lof-kl-rome", "lof-kl-milan", 1).await;
    rome.create_namespace("demo").await.unwrap();
    milan.create_namespace("demo-rome").await.unwrap();
    accept_mapping(&rome.client(), "demo", "demo-rome").await;
    let shutdown = Shutdown::new();
    let _controller = tokio::spawn(shadowpod::run(
        milan.client(),
        shadowpod::Config::default(),
        shutdown.wait_owned(),
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let _vk = rome
        .daemon(
            "lof-kl-virtual-kubelet",
            env!("CARGO_BIN_EXE_liqo-virtual-kubelet"),
            [
                "--virtual-node-name",
                NODE,
                "--tenant-namespace",
                TENANT_NS,
                "--home-cluster-id",
                "rome",
                "--foreign-cluster-id",
                "milan",
                "--node-ip",
                "127.0.0.1",
                "--listen-port",
                &port,
            ],
        )
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(rome.client(), "demo");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "nodeSelector": {"liqo.io/type": "virtual-node"},
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "web", "image": "nginx"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the offloaded pod to be Running", WAIT, || async {
        let p = pods.get("web").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;

    let kubeconfig = rome.kubeconfig_path();
    let want_log: String = liqo_testenv::KWOK_CONTAINER_LOG_LINES
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();

    // kubectl logs: the lines kwok serves for the twin, through the virtual kubelet.
    let (code, stdout, stderr) = kubectl(kubeconfig, &["-n", "demo", "logs", "web"], None).await;
    assert_eq!((code, stdout.as_str()), (0, want_log.as_str()), "{stderr}");
    let (code, stdout, _) =
        kubectl(kubeconfig, &["-n", "demo", "logs", "web", "--tail=1"], None).await;
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim_end(),
        *liqo_testenv::KWOK_CONTAINER_LOG_LINES.last().unwrap(),
        "tailLines is passed on"
    );
    // The same through kube-rs (pods/log of the home API server).
    let params = LogParams {
        container: Some("web".into()),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web", &params).await.unwrap(), want_log);

    // The virtual Node tells the API server that its kubelet API speaks WebSockets.
    let node = Api::<k8s_openapi::api::core::v1::Node>::all(rome.client())
        .get(NODE)
        .await
        .unwrap();
    let declared = node.status.unwrap().declared_features.unwrap_or_default();
    assert!(
        declared.iter().any(|f| f == "ExtendWebSocketsToKubelet"),
        "{declared:?}"
    );

    // kubectl exec: the command runs (kwok runs it on the host) and its output comes back.
    let (code, stdout, stderr) = kubectl(
        kubeconfig,
        &[
            "-n",
            "demo",
            "exec",
            "web",
            "--",
            "echo",
            "hello-from-provider",
        ],
        None,
    )
    .await;
    assert_eq!(
        (code, stdout.as_str()),
        (0, "hello-from-provider\n"),
        "{stderr}"
    );

    // stderr comes back on its own channel.
    let (code, stdout, stderr) = kubectl(
        kubeconfig,
        &[
            "-n",
            "demo",
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
        None,
    )
    .await;
    assert_eq!((code, stdout.as_str()), (0, "out\n"));
    assert!(stderr.contains("err"), "{stderr}");

    // stdin goes to the command (kwok never closes the command's stdin, so the command
    // reads what it needs and exits by itself).
    let (code, stdout, stderr) = kubectl(
        kubeconfig,
        &["-n", "demo", "exec", "-i", "web", "--", "head", "-n", "2"],
        Some("first line\nsecond line\n"),
    )
    .await;
    assert_eq!(
        (code, stdout.as_str()),
        (0, "first line\nsecond line\n"),
        "{stderr}"
    );

    // The same session through kube-rs (another WebSocket client): output and Success.
    let mut process = pods
        .exec(
            "web",
            ["sh", "-c", "echo from-kube-rs"],
            &AttachParams::default().container("web").stderr(false),
        )
        .await
        .unwrap();
    let mut out = String::new();
    process
        .stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let status = process.take_status().unwrap().await.unwrap();
    assert_eq!(out, "from-kube-rs\n");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");

    // A failing command: kubectl exits non-zero and says why.
    let (code, _, stderr) = kubectl(
        kubeconfig,
        &["-n", "demo", "exec", "web", "--", "sh", "-c", "exit 3"],
        None,
    )
    .await;
    assert_ne!(code, 0, "a failing command must fail kubectl exec");
    assert!(stderr.contains("exit status 3") || code == 3, "{stderr}");

    // A pod of a namespace that is not offloaded here is not found by the kubelet API.
    let missing = pods.logs("absent", &params).await.unwrap_err().to_string();
    assert!(
        missing.contains("not found") || missing.contains("NotFound"),
        "{missing}"
    );

    // A pod bound to the virtual node in a namespace that is not offloaded: no twin, so a
    // clear error instead of a hang.
    rome.create_namespace("local-only").await.unwrap();
    let local: Api<Pod> = Api::namespaced(rome.client(), "local-only");
    let stray: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray"},
        "spec": {
            "nodeName": NODE,
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}],
            "containers": [{"name": "app", "image": "busybox"}],
        },
    }))
    .unwrap();
    local.create(&PostParams::default(), &stray).await.unwrap();
    let (code, stdout, stderr) = kubectl(
        kubeconfig,
        &["-n", "local-only", "exec", "stray", "--", "echo", "nope"],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("pod local-only/stray is not offloaded"),
        "the error must say why: {stderr}"
    );
    let (code, _, stderr) = kubectl(kubeconfig, &["-n", "local-only", "logs", "stray"], None).await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("pod local-only/stray is not offloaded"),
        "the error must say why: {stderr}"
    );

    // kubectl attach: kwok streams what is appended to the container log file to attach
    // sessions; lines appended on the provider reach kubectl through the virtual kubelet.
    let binaries = liqo_testenv::Binaries::discover().unwrap();
    let mut attach = tokio::process::Command::new(binaries.path("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["-n", "demo", "attach", "web", "-c", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut attached = tokio::io::BufReader::new(attach.stdout.take().unwrap()).lines();
    let log_file = milan.kwok_container_log();
    let writer = tokio::spawn(async move {
        // Until the session is up, appended lines are not seen: keep appending.
        for i in 0.. {
            let mut file = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&log_file)
                .await
                .unwrap();
            let line = format!("2026-01-01T00:01:00.000000000Z stdout F attached-line-{i}\n");
            file.write_all(line.as_bytes()).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });
    let seen = tokio::time::timeout(WAIT, async {
        while let Some(line) = attached.next_line().await.unwrap() {
            eprintln!("kubectl attach -> {line}");
            if line.starts_with("attached-line-") {
                return line;
            }
        }
        panic!("kubectl attach ended without the appended lines");
    })
    .await;
    writer.abort();
    if seen.is_err() {
        let _ = attach.start_kill();
        let out = attach.wait_with_output().await.unwrap();
        panic!(
            "kubectl attach showed no appended line: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
