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
use liqo_testenv::eventually;
use serde_json::json;
use support::{NODE, WAIT, offloaded_web};
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
    let offloaded = offloaded_web("lof-kl", &[]).await;
    let (rome, milan) = (&offloaded.rome, &offloaded.milan);
    let pods: Api<Pod> = Api::namespaced(rome.client(), "demo");

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

/// curl against the kubelet API with an optional client certificate; (exit code, HTTP status
/// line and body).
fn curl(url: &str, cert: Option<(&std::path::Path, &std::path::Path)>) -> (i32, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sk", "--max-time", "20", "-w", "\nHTTP %{http_code}", url]);
    if let Some((crt, key)) = cert {
        cmd.arg("--cert").arg(crt).arg("--key").arg(key);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "curl {url} (cert: {}) -> {:?}: {text}",
        cert.is_some(),
        out.status.code()
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A client certificate for `user` in `group`, issued by the cluster's CA (as any user of the
/// cluster could get one through the CSR API).
fn client_cert(
    dir: &std::path::Path,
    user: &str,
    group: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, csr, crt) = (
        dir.join(format!("{user}.key")),
        dir.join(format!("{user}.csr")),
        dir.join(format!("{user}.crt")),
    );
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    let subject = format!("/CN={user}/O={group}");
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        &subject,
        "-out",
        csr.to_str().unwrap(),
    ]);
    // An X.509 v3 client certificate (rustls, like Go, refuses v1 certificates).
    let ext = dir.join(format!("{user}.ext"));
    std::fs::write(
        &ext,
        "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-extfile",
        ext.to_str().unwrap(),
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        dir.join("ca.crt").to_str().unwrap(),
        "-CAkey",
        dir.join("ca.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        crt.to_str().unwrap(),
    ]);
    (crt, key)
}

/// The kubelet API authenticates and authorizes like a kubelet: no client certificate, no
/// TLS session; a certificate of the cluster's CA for a user without `nodes/proxy` on the
/// virtual node, 403; the API server's kubelet client certificate, the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_api_requires_an_authorized_client_certificate() {
    let offloaded = offloaded_web("lof-ka", &[]).await;
    let (rome, port) = (&offloaded.rome, &offloaded.port);
    let url = format!("https://127.0.0.1:{port}/containerLogs/demo/web/web");
    let server_up = eventually("the kubelet API listening", WAIT, || async {
        std::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .ok()
            .map(|_| ())
    });
    server_up.await;

    // No client certificate: the handshake is refused, nothing is served.
    let (code, text) = curl(&url, None);
    assert_ne!(
        code, 0,
        "an anonymous client must not get an answer: {text}"
    );
    assert!(!text.contains("HTTP 200"), "{text}");

    // A certificate of the cluster's CA, for a user with no right on the node.
    let (crt, key) = client_cert(rome.dir(), "mallory", "developers");
    let (code, text) = curl(&url, Some((&crt, &key)));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(
        text.contains("Forbidden (user=mallory, verb=get, resource=nodes, subresource=proxy)"),
        "{text}"
    );

    // The API server's own kubelet client certificate is authorized.
    let (code, text) = curl(
        &url,
        Some((
            &rome.dir().join("apiserver-kubelet-client.crt"),
            &rome.dir().join("apiserver-kubelet-client.key"),
        )),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("HTTP 200"), "{text}");
    assert!(
        text.contains(liqo_testenv::KWOK_CONTAINER_LOG_LINES[0]),
        "{text}"
    );

    // A certificate of another CA is refused at the handshake.
    let other = tempdir_with_ca(rome.dir());
    let (crt, key) = client_cert(&other, "admin", "system:masters");
    let (code, text) = curl(&url, Some((&crt, &key)));
    assert_ne!(
        code, 0,
        "a certificate of a foreign CA must not be accepted: {text}"
    );
}

/// A directory with a fresh self-signed CA (ca.crt, ca.key) unrelated to the cluster's.
fn tempdir_with_ca(base: &std::path::Path) -> std::path::PathBuf {
    let dir = base.join("foreign-ca");
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            dir.join("ca.key").to_str().unwrap(),
            "-out",
            dir.join("ca.crt").to_str().unwrap(),
            "-subj",
            "/CN=foreign-ca",
            "-days",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}
