//! The HTTPS servers (webhooks, kubelet API) hold up against clients that send too much or
//! nothing: an oversized review gets 413 without being read whole, a connection that never
//! completes its TLS handshake is closed, and a kubelet-style server refuses clients without a
//! certificate of its CA.

#![cfg(feature = "webhook")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use liqo_core::webhook::{
    AdmissionResponse, MAX_BODY_BYTES, ServingCertificate, WebhookServer, full_body,
    serve_tls_authenticated,
};
use tokio::io::AsyncReadExt as _;

async fn webhook() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let cert = ServingCertificate::self_signed(&[], &["127.0.0.1".parse().unwrap()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        WebhookServer::new()
            .route(
                "/validate",
                |req| async move { AdmissionResponse::allow(&req) },
            )
            .serve(listener, &cert, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (port, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_review_is_refused() {
    let (port, _stop) = webhook().await;
    let dir = std::env::temp_dir().join(format!("liqo-https-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; MAX_BODY_BYTES + 1024 * 1024]).unwrap();
    let out = tokio::process::Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .arg("-H")
        .arg("Content-Type: application/json")
        .arg("--data-binary")
        .arg(format!("@{}", big.display()))
        .arg(format!("https://127.0.0.1:{port}/validate"))
        .output()
        .await
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    // 413, or the connection closed by the server before curl finished sending.
    assert!(
        code == "413" || (code == "000" && !out.status.success()),
        "an oversized body must be refused, got HTTP {code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed() {
    let (port, _stop) = webhook().await;
    // Many connections that never say anything: each is closed by the server (the handshake
    // times out), not held open forever.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    for mut stream in silent {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(n)) => panic!("the server sent {n} bytes to a client that said nothing"),
            Err(_) => panic!("a silent connection was held open for a minute"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_server_refuses_clients_without_a_certificate() {
    let server = ServingCertificate::self_signed(&[], &["127.0.0.1".parse().unwrap()]).unwrap();
    let client_ca = ServingCertificate::self_signed(&["client-ca".into()], &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        serve_tls_authenticated(
            listener,
            &server,
            &client_ca.ca_pem,
            |_req| async { hyper::Response::new(full_body("secret")) },
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "--max-time", "20"])
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "no certificate, no answer");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
}
