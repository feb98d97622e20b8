//! `exec` and `attach` of the kubelet API over WebSockets: the Kubernetes remote-command
//! channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`) on the home side, bridged to
//! an exec/attach session that kube-rs opens on the provider's API server.
//!
//! Every frame is binary and starts with a channel byte: 0 stdin (client to server), 1 stdout,
//! 2 stderr, 3 error (the final `metav1.Status`, with the exit code for non-zero exits), 4
//! terminal resize (`{"Width":..,"Height":..}`, tty only), and in v5 255 "close channel" (the
//! client's stdin reached EOF: `[255, 0]`). The session ends with the Status on channel 3 and
//! a normal WebSocket close.
//!
//! The decisions (query parsing, subprotocol negotiation, frame decoding, Status forging) are
//! pure functions here; [`bridge`] only moves bytes.

use futures::{SinkExt as _, StreamExt as _};
use hyper::StatusCode;
use hyper::body::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess, TerminalSize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Channel of the client's standard input.
pub(crate) const STDIN: u8 = 0;
/// Channel of the standard output.
pub(crate) const STDOUT: u8 = 1;
/// Channel of the standard error.
pub(crate) const STDERR: u8 = 2;
/// Channel of the final Status.
pub(crate) const ERROR: u8 = 3;
/// Channel of terminal resize events.
pub(crate) const RESIZE: u8 = 4;
/// v5: "the channel in the next byte is closed".
pub(crate) const CLOSE: u8 = 255;

/// Exec or attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// Runs a new command in the container.
    Exec,
    /// Attaches to the container's main process.
    Attach,
}

impl StreamKind {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Attach => "attach",
        }
    }
}

/// The options of a kubelet `exec`/`attach` query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    /// The command (exec only), one `command=` parameter per argument.
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// The kube-rs parameters for the provider's session.
    pub(crate) fn attach_params(&self, container: &str) -> AttachParams {
        AttachParams {
            container: Some(container.to_owned()),
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            tty: self.tty,
            // Larger pipes than kube's 1 KiB default: fewer, larger frames.
            max_stdin_buf_size: Some(64 * 1024),
            max_stdout_buf_size: Some(64 * 1024),
            max_stderr_buf_size: Some(64 * 1024),
        }
    }
}

/// Decodes `%XX` escapes and `+` (space) of a query component; invalid escapes stay as
/// they are, invalid UTF-8 is replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the query of a kubelet `exec`/`attach` request, as the kubelet does: `command`
/// (repeated, exec only), `input`, `output`, `error`, `tty` (`1` or `true`). With a tty,
/// stderr is merged into stdout (the kubelet drops it too).
///
/// # Errors
///
/// A message for the user when no stream is requested or exec has no command.
pub(crate) fn stream_options(
    kind: StreamKind,
    query: Option<&str>,
) -> Result<StreamOptions, String> {
    let mut options = StreamOptions::default();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        let truthy = value == "1" || value == "true";
        match percent_decode(key).as_str() {
            "command" => options.command.push(value),
            "input" | "stdin" => options.stdin = truthy,
            "output" | "stdout" => options.stdout = truthy,
            "error" | "stderr" => options.stderr = truthy,
            "tty" => options.tty = truthy,
            _ => {}
        }
    }
    if options.tty {
        options.stderr = false;
    }
    if !options.stdin && !options.stdout && !options.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".to_owned());
    }
    if kind == StreamKind::Exec && options.command.is_empty() {
        return Err("exec needs a command (one command= query parameter per argument)".to_owned());
    }
    Ok(options)
}

/// A remote-command WebSocket subprotocol this kubelet API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `v5.channel.k8s.io`: v4 plus the close-channel signal (255).
    V5,
    /// `v4.channel.k8s.io`: exit codes in the Status on channel 3.
    V4,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::V5 => "v5.channel.k8s.io",
            Self::V4 => "v4.channel.k8s.io",
        }
    }
}

/// The subprotocols this kubelet API accepts, preferred first.
pub(crate) const SUPPORTED_PROTOCOLS: &str = "v5.channel.k8s.io, v4.channel.k8s.io";

/// Picks v5 if the client offers it, else v4, from the `Sec-WebSocket-Protocol` header values
/// (each a comma-separated list).
pub(crate) fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Protocol> {
    let offered: Vec<&str> = offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    [Protocol::V5, Protocol::V4]
        .into_iter()
        .find(|p| offered.contains(&p.name()))
}

/// Whether the request headers ask for a WebSocket upgrade.
pub(crate) fn is_websocket_upgrade(headers: &hyper::HeaderMap) -> bool {
    let has = |name: hyper::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(hyper::header::CONNECTION, "upgrade") && has(hyper::header::UPGRADE, "websocket")
}

/// What a frame from the client means.
#[derive(Debug, PartialEq)]
pub(crate) enum Inbound {
    /// Bytes for the process's stdin.
    Stdin(Bytes),
    /// The client's stdin reached EOF (v5).
    CloseStdin,
    /// The terminal changed size (tty): width, height.
    Resize(u16, u16),
    /// Nothing to do (empty frame, unknown channel, close of another channel).
    Ignore,
}

/// Decodes a binary frame from the client.
pub(crate) fn inbound(protocol: Protocol, frame: &Bytes) -> Inbound {
    match frame.first() {
        Some(&STDIN) if frame.len() > 1 => Inbound::Stdin(frame.slice(1..)),
        Some(&RESIZE) => serde_json::from_slice::<TerminalSize>(&frame[1..])
            .map_or(Inbound::Ignore, |s| Inbound::Resize(s.width, s.height)),
        Some(&CLOSE) if protocol == Protocol::V5 && frame.get(1) == Some(&STDIN) => {
            Inbound::CloseStdin
        }
        _ => Inbound::Ignore,
    }
}

/// A frame for the client: `channel` then `data`.
pub(crate) fn frame(channel: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Bytes::from(out)
}

/// The Status the client gets on channel 3: the provider's own (Success, or Failure with
/// reason `NonZeroExitCode` and the exit code in `details.causes`, or its error), or, when
/// the provider's stream ended without one, a Failure saying so.
pub(crate) fn final_status(remote: Option<Status>, what: &str) -> Status {
    remote.unwrap_or_else(|| Status {
        status: Some("Failure".to_owned()),
        reason: Some("InternalError".to_owned()),
        code: Some(500),
        message: Some(format!(
            "{what}: the provider's API server closed the stream without an exit status"
        )),
        ..Status::default()
    })
}

/// The exit code a Status reports: 0 for Success, the `ExitCode` cause for NonZeroExitCode,
/// `None` for other failures.
pub(crate) fn exit_code(status: &Status) -> Option<u8> {
    match status.status.as_deref() {
        Some("Success") => Some(0),
        _ if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .as_ref()?
            .causes
            .as_ref()?
            .iter()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))?
            .message
            .as_deref()?
            .parse()
            .ok(),
        _ => None,
    }
}

/// An HTTP error answer as a `metav1.Status` JSON body, which kubectl shows as
/// "Error from server (Reason): message".
pub(crate) fn error_status_body(code: StatusCode, message: &str) -> String {
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "InternalError",
        _ => "",
    };
    let mut status = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code.as_u16(),
    });
    if !reason.is_empty() {
        status["reason"] = serde_json::Value::from(reason);
    }
    status.to_string()
}

/// Moves bytes between the client's WebSocket and the provider's session until the session
/// ends (then the Status goes on channel 3 and the WebSocket is closed normally) or the
/// client goes away (then the provider's session is aborted).
pub(crate) async fn bridge<S>(
    ws: WebSocketStream<S>,
    mut process: AttachedProcess,
    protocol: Protocol,
    what: String,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let mut stdin = process.stdin();
    let mut resize = process.terminal_size();
    let status = process.take_status();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    for (channel, reader) in [(STDOUT, process.stdout()), (STDERR, process.stderr())] {
        let Some(mut reader) = reader else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0_u8; 32 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(frame(channel, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(tx);

    let from_client = async {
        while let Some(message) = source.next().await {
            let bytes = match message {
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            match inbound(protocol, &bytes) {
                Inbound::Stdin(data) => {
                    if let Some(w) = stdin.as_mut()
                        && w.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Inbound::CloseStdin => {
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                }
                Inbound::Resize(width, height) => {
                    if let Some(r) = resize.as_mut() {
                        let _ = r.send(TerminalSize { width, height }).await;
                    }
                }
                Inbound::Ignore => {}
            }
        }
    };

    let to_client = async {
        while let Some(f) = rx.recv().await {
            if sink.send(Message::Binary(f)).await.is_err() {
                return;
            }
        }
        let remote = match status {
            Some(s) => s.await,
            None => None,
        };
        let status = final_status(remote, &what);
        tracing::debug!(%what, exit_code = ?exit_code(&status), "remote command finished");
        let payload = serde_json::to_vec(&status).unwrap_or_default();
        let _ = sink.send(Message::Binary(frame(ERROR, &payload))).await;
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    };

    tokio::select! {
        () = to_client => {}
        () = from_client => {
            tracing::debug!(%what, "the client went away: aborting the provider's session");
        }
    }
    process.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn query_parsing() {
        let o = stream_options(
            StreamKind::Exec,
            Some(
                "command=sh&command=-c&command=echo+%22a%26b%22%3B+exit+3&input=1&output=1&error=1",
            ),
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo \"a&b\"; exit 3"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);

        let tty = stream_options(
            StreamKind::Exec,
            Some("command=bash&output=1&error=1&tty=true"),
        )
        .unwrap();
        assert!(tty.tty && tty.stdout && !tty.stderr, "tty merges stderr");
        let ap = tty.attach_params("c");
        assert_eq!(ap.container.as_deref(), Some("c"));
        assert!(ap.tty && !ap.stderr);

        assert!(stream_options(StreamKind::Exec, Some("command=ls")).is_err());
        assert!(stream_options(StreamKind::Exec, Some("output=1")).is_err());
        assert!(stream_options(StreamKind::Attach, Some("output=1")).is_ok());
        assert!(stream_options(StreamKind::Exec, None).is_err());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn subprotocol_negotiation() {
        assert_eq!(
            negotiate(["v4.channel.k8s.io, v5.channel.k8s.io"]),
            Some(Protocol::V5)
        );
        assert_eq!(
            negotiate(["channel.k8s.io", "v4.channel.k8s.io"]),
            Some(Protocol::V4)
        );
        assert_eq!(negotiate(["base64.channel.k8s.io"]), None);
        assert_eq!(negotiate([]), None);
        let mut h = hyper::HeaderMap::new();
        h.insert(
            hyper::header::CONNECTION,
            "keep-alive, Upgrade".parse().unwrap(),
        );
        h.insert(hyper::header::UPGRADE, "websocket".parse().unwrap());
        assert!(is_websocket_upgrade(&h));
        h.insert(hyper::header::UPGRADE, "SPDY/3.1".parse().unwrap());
        assert!(!is_websocket_upgrade(&h));
    }

    #[test]
    fn channel_mapping() {
        let b = |v: &[u8]| Bytes::copy_from_slice(v);
        assert_eq!(inbound(Protocol::V5, &b(b"\0hi")), Inbound::Stdin(b(b"hi")));
        assert_eq!(inbound(Protocol::V5, &b(&[STDIN])), Inbound::Ignore);
        assert_eq!(
            inbound(Protocol::V5, &b(&[CLOSE, STDIN])),
            Inbound::CloseStdin
        );
        assert_eq!(inbound(Protocol::V4, &b(&[CLOSE, STDIN])), Inbound::Ignore);
        assert_eq!(inbound(Protocol::V5, &b(&[CLOSE, STDOUT])), Inbound::Ignore);
        assert_eq!(
            inbound(Protocol::V4, &b(b"\x04{\"Width\":80,\"Height\":24}")),
            Inbound::Resize(80, 24)
        );
        assert_eq!(inbound(Protocol::V4, &b(b"\x04nope")), Inbound::Ignore);
        assert_eq!(inbound(Protocol::V4, &b(b"")), Inbound::Ignore);
        assert_eq!(&frame(STDERR, b"x")[..], b"\x02x");
    }

    #[test]
    fn statuses() {
        let success = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(&final_status(Some(success), "exec")), Some(0));
        let three = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    field: None,
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        let relayed = final_status(Some(three), "exec");
        assert_eq!(exit_code(&relayed), Some(3));
        let json = serde_json::to_value(&relayed).unwrap();
        assert_eq!(json["details"]["causes"][0]["message"], "3");
        let lost = final_status(None, "exec in demo/web");
        assert_eq!(lost.status.as_deref(), Some("Failure"));
        assert!(lost.message.unwrap().contains("without an exit status"));
        assert_eq!(exit_code(&Status::default()), None);

        let body: serde_json::Value =
            serde_json::from_str(&error_status_body(StatusCode::NOT_FOUND, "nope")).unwrap();
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "NotFound");
        assert_eq!(body["code"], 404);
        assert_eq!(body["message"], "nope");
    }
}
