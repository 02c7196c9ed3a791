//! WebSocket clients that connect and never read (the soak bench): a dashboard tab left open on
//! a sleeping laptop. Each one completes the handshake on `/api/v1/stream?topics=views` and then
//! is never polled, so its TCP connection stays open while its receive buffer fills and the
//! server's send buffer after it.
//!
//! What happens to them is observed without reading, from `/proc/net/tcp` (the bench and the
//! server share the loopback): per connection, the state and the queued bytes on the client
//! side (unread) and on the server side (not yet taken by the client). A server that closes a
//! non-reader shows as a server-side socket leaving `ESTABLISHED` (`FIN_WAIT1` while its data
//! cannot be delivered, or gone after a reset) even though the client has not read the close.
//! At the end each client is drained once: the messages still queued for it, then whatever the
//! server sends next (a resync snapshot, a close frame, or the live stream).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::serve_ws::connect;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The held connections, on a runtime that is only driven to connect and to drain.
pub struct Silent {
    rt: tokio::runtime::Runtime,
    held: Vec<(Ws, u16)>,
    /// Handshakes that failed.
    pub connect_errors: Vec<String>,
}

impl Silent {
    /// Connects `n` clients (one at a time: they are few, and a handshake is quick).
    pub fn connect(n: usize, url: &str, token: &str) -> std::io::Result<Silent> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut held = Vec::with_capacity(n);
        let mut connect_errors = Vec::new();
        for _ in 0..n {
            match rt.block_on(connect(url.to_string(), token)) {
                Ok(ws) => {
                    let port = match ws.get_ref() {
                        MaybeTlsStream::Plain(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
                        _ => 0,
                    };
                    held.push((ws, port));
                }
                Err(e) => connect_errors.push(e.to_string()),
            }
        }
        Ok(Silent {
            rt,
            held,
            connect_errors,
        })
    }

    /// The clients' local ports (their `/proc/net/tcp` entries).
    pub fn ports(&self) -> Vec<u16> {
        self.held.iter().map(|(_, p)| *p).collect()
    }

    /// Reads each client until it has been idle for `idle` (or closed), all at once, for at most
    /// `limit` in all, then closes the ones still open.
    pub fn drain(self, idle: Duration, limit: Duration) -> Drained {
        let Silent { rt, held, .. } = self;
        let outs: Vec<DrainOne> = rt.block_on(async move {
            let tasks: Vec<_> = held
                .into_iter()
                .map(|(ws, _)| tokio::spawn(drain_one(ws, idle, limit)))
                .collect();
            let mut outs = Vec::with_capacity(tasks.len());
            for t in tasks {
                outs.push(t.await.unwrap_or_else(|e| DrainOne {
                    end: format!("task failed: {e}"),
                    ..DrainOne::default()
                }));
            }
            outs
        });
        Drained::from(&outs)
    }
}

#[derive(Default)]
struct DrainOne {
    bytes: u64,
    snapshots: u64,
    diffs: u64,
    heartbeats: u64,
    /// `still open`, `close frame <code> <reason>`, `closed without a close frame`, `error ...`.
    end: String,
}

async fn drain_one(mut ws: Ws, idle: Duration, limit: Duration) -> DrainOne {
    let mut out = DrainOne::default();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let wait = idle.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => {
                out.end = "still open".into();
                let _ = ws.close(None).await;
                break;
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                out.bytes += t.len() as u64;
                // serde writes the tag first: `{"type":"snapshot",...}`
                let t = t.as_str();
                if t.starts_with(r#"{"type":"snapshot""#) {
                    out.snapshots += 1;
                } else if t.starts_with(r#"{"type":"diff""#) {
                    out.diffs += 1;
                } else if t.starts_with(r#"{"type":"heartbeat""#) {
                    out.heartbeats += 1;
                }
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                out.end = match f {
                    Some(f) => format!("close frame {} {:?}", u16::from(f.code), f.reason.as_str()),
                    None => "close frame without a code".into(),
                };
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                out.end = format!("error: {e}");
                break;
            }
            Ok(None) => {
                out.end = "closed without a close frame".into();
                break;
            }
        }
    }
    out
}

/// What draining the non-readers found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Drained {
    pub clients: usize,
    /// How each one ended, with counts (`still open`, `close frame 1008 "..."`, ...).
    pub ends: BTreeMap<String, usize>,
    /// Clients that received a snapshot after their first (a resync).
    pub resynced: usize,
    pub snapshots_after_first: u64,
    pub diffs: u64,
    pub heartbeats: u64,
    pub mbytes: f64,
    pub seconds: f64,
}

impl Drained {
    fn from(outs: &[DrainOne]) -> Drained {
        let mut d = Drained {
            clients: outs.len(),
            ..Drained::default()
        };
        for o in outs {
            *d.ends.entry(o.end.clone()).or_default() += 1;
            if o.snapshots > 1 {
                d.resynced += 1;
            }
            d.snapshots_after_first += o.snapshots.saturating_sub(1);
            d.diffs += o.diffs;
            d.heartbeats += o.heartbeats;
            d.mbytes += o.bytes as f64 / 1e6;
        }
        d
    }
}

/// The non-readers' connections as the kernel sees them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TcpView {
    /// Client-side sockets by state (`ESTABLISHED`, `CLOSE_WAIT`, ...; `gone` when absent).
    pub client: BTreeMap<String, usize>,
    /// Server-side sockets by state (`gone` when the server released it).
    pub server: BTreeMap<String, usize>,
    /// Bytes waiting in the clients' receive queues (sent, never read).
    pub client_unread: u64,
    /// Bytes in the server's send queues for them (not yet taken by the clients).
    pub server_queued: u64,
}

impl TcpView {
    /// Server-side sockets that left `ESTABLISHED` (closed or being closed by the server).
    pub fn server_closed(&self) -> usize {
        self.server
            .iter()
            .filter(|(s, _)| s.as_str() != "ESTABLISHED")
            .map(|(_, n)| n)
            .sum()
    }
}

fn state_name(hex: &str) -> &'static str {
    match hex {
        "01" => "ESTABLISHED",
        "02" => "SYN_SENT",
        "03" => "SYN_RECV",
        "04" => "FIN_WAIT1",
        "05" => "FIN_WAIT2",
        "06" => "TIME_WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE_WAIT",
        "09" => "LAST_ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        _ => "other",
    }
}

/// `"0100007F:1F90"` -> port.
fn port_of(addr: &str) -> Option<u16> {
    u16::from_str_radix(addr.rsplit(':').next()?, 16).ok()
}

/// Reads `/proc/net/tcp` for the connections between `clients` (local ports) and the server
/// listening on `server_port` (IPv4 loopback).
pub fn tcp_view(clients: &[u16], server_port: u16) -> TcpView {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted: std::collections::HashSet<u16> = clients.iter().copied().collect();
    let mut seen_client = std::collections::HashSet::new();
    let mut seen_server = std::collections::HashSet::new();
    let mut v = TcpView::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(st), Some(queues)) =
            (f.get(1), f.get(2), f.get(3), f.get(4))
        else {
            continue;
        };
        let (Some(lp), Some(rp)) = (port_of(local), port_of(remote)) else {
            continue;
        };
        let (tx, rx) = queues
            .split_once(':')
            .map(|(t, r)| {
                (
                    u64::from_str_radix(t, 16).unwrap_or(0),
                    u64::from_str_radix(r, 16).unwrap_or(0),
                )
            })
            .unwrap_or((0, 0));
        if rp == server_port && wanted.contains(&lp) && seen_client.insert(lp) {
            *v.client.entry(state_name(st).into()).or_default() += 1;
            v.client_unread += rx;
        } else if lp == server_port && wanted.contains(&rp) && seen_server.insert(rp) {
            *v.server.entry(state_name(st).into()).or_default() += 1;
            v.server_queued += tx;
        }
    }
    let gone = |seen: usize| clients.len().saturating_sub(seen);
    if gone(seen_client.len()) > 0 {
        v.client.insert("gone".into(), gone(seen_client.len()));
    }
    if gone(seen_server.len()) > 0 {
        v.server.insert("gone".into(), gone(seen_server.len()));
    }
    v
}

/// `ESTABLISHED 50` style text of a state count.
pub fn states(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "—".into();
    }
    m.iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
