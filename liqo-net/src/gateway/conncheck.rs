//! The connection check between two gateways: UDP PING/PONG between the tunnel addresses,
//! as upstream's `conncheck` does, giving connected-or-not and a round-trip latency.
//!
//! Each side answers the PINGs it receives and sends its own every `interval`; the peer is
//! connected while a PONG arrived within the last `loss_threshold` intervals.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

/// Upstream's default ping port.
pub const DEFAULT_PORT: u16 = 12345;
/// Upstream's default interval between pings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Upstream's default number of lost pings after which the peer counts as disconnected.
pub const DEFAULT_LOSS_THRESHOLD: u32 = 5;

const PING: u8 = 1;
const PONG: u8 = 2;
const MESSAGE_LEN: usize = 17;

/// Options of a [`ConnCheck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// UDP port on both tunnel addresses.
    pub port: u16,
    /// Time between two pings.
    pub interval: Duration,
    /// Pings lost in a row before the peer counts as disconnected.
    pub loss_threshold: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            interval: DEFAULT_INTERVAL,
            loss_threshold: DEFAULT_LOSS_THRESHOLD,
        }
    }
}

/// What the check knows about the peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionState {
    /// Whether a PONG arrived recently enough.
    pub connected: bool,
    /// Round trip of the last answered ping.
    pub latency: Option<Duration>,
}

/// A running connection check; dropping it stops the task.
#[derive(Debug)]
pub struct ConnCheck {
    state: watch::Receiver<ConnectionState>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnCheck {
    /// Starts checking `peer` from `local` (both tunnel addresses; the port of `options` is
    /// used on both). Binding is retried until the local address exists.
    ///
    /// ```no_run
    /// use liqo_net::gateway::conncheck::{CheckOptions, ConnCheck};
    ///
    /// # async fn f() {
    /// let check = ConnCheck::start(
    ///     "169.254.18.1".parse().unwrap(),
    ///     "169.254.18.2".parse().unwrap(),
    ///     CheckOptions::default(),
    /// );
    /// let mut state = check.subscribe();
    /// state.changed().await.ok();
    /// println!("connected: {}", state.borrow().connected);
    /// # }
    /// ```
    #[must_use]
    pub fn start(local: std::net::IpAddr, peer: std::net::IpAddr, options: CheckOptions) -> Self {
        let (tx, rx) = watch::channel(ConnectionState::default());
        let local = SocketAddr::new(local, options.port);
        let peer = SocketAddr::new(peer, options.port);
        let task = tokio::spawn(run(local, peer, options, tx));
        Self { state: rx, task }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// A receiver notified on every change of connectedness or latency.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

impl Drop for ConnCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind(local: SocketAddr, interval: Duration) -> UdpSocket {
    loop {
        match UdpSocket::bind(local).await {
            Ok(socket) => return socket,
            Err(e) => {
                tracing::debug!(%local, error = %e, "connection check: cannot bind yet");
                tokio::time::sleep(interval.min(Duration::from_secs(1))).await;
            }
        }
    }
}

async fn run(
    local: SocketAddr,
    peer: SocketAddr,
    options: CheckOptions,
    state: watch::Sender<ConnectionState>,
) {
    let origin = Instant::now();
    let mut socket = bind(local, options.interval).await;
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let mut last_pong: Option<Instant> = None;
    let mut buf = [0u8; 64];
    let window = options.interval * options.loss_threshold.max(1);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                seq = seq.wrapping_add(1);
                let nanos = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let msg = encode(PING, seq, nanos);
                if let Err(e) = socket.send_to(&msg, peer).await {
                    // The tunnel address may have gone with a recreated interface: bind again.
                    tracing::debug!(%peer, error = %e, "connection check: send failed");
                    socket = bind(local, options.interval).await;
                }
                let connected = last_pong.is_some_and(|at| at.elapsed() <= window);
                state.send_if_modified(|s| {
                    let changed = s.connected != connected;
                    s.connected = connected;
                    changed
                });
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((len, from)) = received else { continue };
                let Some((kind, seq_in, nanos)) = decode(&buf[..len]) else { continue };
                match kind {
                    PING => {
                        let _ = socket.send_to(&encode(PONG, seq_in, nanos), from).await;
                    }
                    PONG if from.ip() == peer.ip() => {
                        let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        let rtt = Duration::from_nanos(now.saturating_sub(nanos));
                        last_pong = Some(Instant::now());
                        state.send_if_modified(|s| {
                            let changed = !s.connected || s.latency != Some(rtt);
                            s.connected = true;
                            s.latency = Some(rtt);
                            changed
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}

fn encode(kind: u8, seq: u64, nanos: u64) -> [u8; MESSAGE_LEN] {
    let mut msg = [0u8; MESSAGE_LEN];
    msg[0] = kind;
    msg[1..9].copy_from_slice(&seq.to_be_bytes());
    msg[9..17].copy_from_slice(&nanos.to_be_bytes());
    msg
}

/// `(kind, seq, nanos)` of a well-formed message; anything else is ignored.
fn decode(msg: &[u8]) -> Option<(u8, u64, u64)> {
    if msg.len() != MESSAGE_LEN || !matches!(msg[0], PING | PONG) {
        return None;
    }
    let seq = u64::from_be_bytes(msg[1..9].try_into().ok()?);
    let nanos = u64::from_be_bytes(msg[9..17].try_into().ok()?);
    Some((msg[0], seq, nanos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_roundtrip_and_garbage_is_ignored() {
        assert_eq!(decode(&encode(PING, 7, 99)), Some((PING, 7, 99)));
        assert_eq!(decode(&encode(PONG, 1, 2)), Some((PONG, 1, 2)));
        assert_eq!(decode(b"hello"), None);
        let mut bad = encode(PING, 1, 1);
        bad[0] = 9;
        assert_eq!(decode(&bad), None);
    }

    #[tokio::test]
    async fn two_checks_on_loopback_see_each_other() {
        let options = CheckOptions {
            port: 0,
            interval: Duration::from_millis(50),
            loss_threshold: 3,
        };
        // Port 0 cannot be shared by both sides: use two loopback addresses and a fixed port.
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let options = CheckOptions { port, ..options };
        let a = ConnCheck::start(
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            options,
        );
        let b = ConnCheck::start(
            "127.0.0.2".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
            options,
        );
        let mut sub = a.subscribe();
        tokio::time::timeout(Duration::from_secs(10), sub.wait_for(|s| s.connected))
            .await
            .unwrap()
            .unwrap();
        assert!(a.state().latency.is_some());
        // The peer goes away: after the loss threshold the state flips back.
        drop(b);
        tokio::time::timeout(Duration::from_secs(10), sub.wait_for(|s| !s.connected))
            .await
            .unwrap()
            .unwrap();
    }
}
