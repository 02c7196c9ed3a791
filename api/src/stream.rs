//! `GET /api/v1/stream`: live view diffs and case changes over a WebSocket.
//!
//! One fan-out thread subscribes to the engine's view store and republishes each tick's
//! consolidated diff, then the ids of the cases whose record changed at that tick (they come
//! from the dataflow with the diff, so every source mode has them), on a bounded
//! `tokio::sync::broadcast` channel, keeping the last few ticks for resumption. Each client task forwards from that channel. A client that falls behind the
//! channel (a slow reader) gets a fresh snapshot instead of the missed diffs, so no client can
//! make the server's memory grow: the channel is fixed-size and the socket's own buffer is the
//! only per-client queue.
//!
//! Messages (JSON text frames), every one tagged with its tick:
//! - `{"type":"snapshot","tick":t,"rows":[row...]}`: the whole state; replaces what you hold.
//! - `{"type":"diff","tick":t,"changes":[{"row":row,"diff":1|-1}...]}`: apply in order.
//! - `{"type":"cases","tick":t,"changed":[case id...]}`: cases written at tick t (visible now).
//! - `{"type":"heartbeat","tick":t}` every heartbeat interval.
//!
//! A row is `{"view":"age_group","key":"0-11","value":12}`; `responsible_load` rows carry
//! `{"full_name","agency","open_cases"}` as value; `kpi` rows are the raw sums (the mean time
//! to close is `close_millis_sum / cases_with_close_time` hours, see docs/api.md).
//! `hotspots` rows (topic `hotspots`) are keyed by the H3 cell and carry
//! `{"reports","open_cases","open_minor_cases"}`; read-only tokens get only cells with at least
//! `--hotspots-min-reports` reports, at `--hotspots-reader-resolution` when set.
//! Query: `topics=views,cases,hotspots` (default `views,cases`), `since=<tick>` to resume.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use lpm_engine::{Tick, ViewStore};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
#[cfg(test)]
use crate::hub::Publication;
use crate::hub::{Hub, Published};
use crate::state::AppState;
pub use crate::wire::Topics;
// The wire rows and messages live in lpm-service so Rust clients (the benches, the tests)
// parse the protocol without depending on this crate.
use crate::wire::Event;
use lpm_service::wire::to_wire;
pub use lpm_service::wire::{from_wire, ServerMessage, WireChange, WireRow};

/// Stream options.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// `views`, `cases` and/or `hotspots` (comma-separated; default `views,cases`).
    /// `hotspots` adds the `hotspots` view's rows to the snapshot and diff messages (read-only
    /// tokens: only cells with at least `--hotspots-min-reports` reports, at
    /// `--hotspots-reader-resolution` when set).
    #[param(schema_with = topics_schema)]
    pub topics: Option<String>,
    /// Resume after this tick (a snapshot comes instead when it is no longer kept).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub since: Option<Tick>,
}

/// `GET /api/v1/stream`: upgrades to a WebSocket of JSON text frames (`snapshot`, `diff`,
/// `cases`, `heartbeat`; see docs/api.md). OpenAPI describes neither a protocol switch nor the
/// frames, so this documents the upgrade request and its answers: send the RFC 6455 upgrade
/// headers (`Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`,
/// `Sec-WebSocket-Key`); without them the answer is 400. They are not listed as parameters, so
/// that HTTP tools generating requests from this document do not switch their connection to
/// a protocol they cannot speak. Browsers send an `Origin`, which must be allowed (403).
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream",
    security(("session" = []), ("token" = [])),
    params(StreamParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol",
            headers(("Sec-WebSocket-Accept" = String, description = "The key's hash, per RFC 6455"))),
        (status = 400, description = "Not a WebSocket upgrade, or a malformed or unknown parameter", body = ErrorBody),
        (status = 403, description = "The `Origin` is not allowed", body = ErrorBody),
        (status = 422, description = "An unknown topic; `field` is `topics`", body = ErrorBody)))]
pub async fn handler(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(p): Query<StreamParams>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    check_origin(&headers, &state.config.allowed_origins)?;
    let ws = ws.map_err(|r| ApiError::BadRequest {
        field: None,
        message: format!("a WebSocket upgrade is required: {}", r.body_text()),
    })?;
    let cells = state.config.hotspots.view_for(&who);
    let mut topics = Topics {
        views: true,
        cases: true,
        hotspots: None,
    };
    if let Some(t) = &p.topics {
        topics = Topics {
            views: false,
            cases: false,
            hotspots: None,
        };
        for part in t.split(',').map(str::trim) {
            match part {
                "views" => topics.views = true,
                "cases" => topics.cases = true,
                "hotspots" => topics.hotspots = Some(cells),
                _ => {
                    return Err(ApiError::invalid(
                        "topics",
                        "expected views, cases and/or hotspots",
                    ))
                }
            }
        }
    }
    let hub = state.hub.clone();
    let metrics = state.metrics.clone();
    let timing = Timing::of(&state.config);
    let ws = ws
        .read_buffer_size(CLIENT_READ_BUFFER)
        .max_message_size(CLIENT_MAX_MESSAGE)
        .max_frame_size(CLIENT_MAX_MESSAGE);
    Ok(ws.on_upgrade(move |socket: WebSocket| async move {
        metrics.ws_clients.inc();
        let (sink, stream) = socket.split();
        let resyncs = metrics.ws_resyncs.clone();
        let client = Client { topics };
        let closed = serve_client(hub, client, p.since, timing, sink, stream, move || {
            resyncs.inc()
        })
        .await;
        if let Some(reason) = closed {
            metrics.ws_closed.with_label_values(&[reason]).inc();
        }
        metrics.ws_clients.dec();
    }))
}

/// Refuses a WebSocket upgrade from a browser page of another origin: the stream accepts the
/// session cookie, which a page elsewhere would send along (cross-site WebSocket hijacking).
/// Allowed: no `Origin` (not a browser: curl, Grafana's backend, websocat), an origin whose
/// host and port are the request's `Host` (the web UI served by lpm), or one listed in
/// `--allowed-origins` (a reverse proxy's public name, a separate front end).
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim();
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !authority.is_empty() && authority.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "Origin {origin:?} may not open the stream: only the server's own origin and \
         --allowed-origins may"
    )))
}

/// The client loop's clocks.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often a heartbeat message and a ping are sent.
    pub heartbeat: Duration,
    /// A frame not written within this closes the client (`send_timeout`): it stopped reading.
    pub send_timeout: Duration,
    /// Nothing heard (no pong, no frame) for this long closes the client (`pong_timeout`).
    pub pong_timeout: Duration,
}

impl Timing {
    /// From the serving options.
    pub fn of(c: &crate::state::ApiConfig) -> Timing {
        Timing {
            heartbeat: c.heartbeat,
            send_timeout: c.ws_send_timeout,
            pong_timeout: c.ws_pong_timeout,
        }
    }
}

/// Why the server closed a client (`lpm_ws_closed_total{reason}`).
pub const CLOSE_REASONS: [&str; 2] = ["send_timeout", "pong_timeout"];

fn topics_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use crate::input_schema::WHITESPACE;
    let topic = format!("[{WHITESPACE}]*(views|cases|hotspots)[{WHITESPACE}]*");
    string_schema(format!("^{topic}(,{topic})*$"))
}

fn string_schema(pattern: String) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .into()
}

fn text(m: &ServerMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

/// What one client is sent.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// The topics it asked for, with the cells its role sees.
    pub topics: Topics,
}

impl Client {
    /// The frame of a published event for this client: the shared text, unless the client
    /// takes `hotspots`, whose rows depend on the cells its role sees.
    fn frame(&self, p: &Published) -> Message {
        Message::Text(p.text_for(self.topics))
    }
}

fn snapshot(store: &ViewStore, client: Client) -> Option<(Tick, ServerMessage)> {
    let (tick, rows) = store.snapshot();
    let tick = tick?;
    let rows = rows
        .iter()
        .filter(|r| client.topics.shows(r))
        .filter_map(to_wire)
        .collect();
    Some((tick, ServerMessage::Snapshot { tick, rows }))
}

fn wants(e: &Event, topics: Topics) -> bool {
    match e {
        Event::Views(_) => topics.any_rows(),
        Event::Cases(..) => topics.cases,
    }
}

/// The read buffer of a client's socket. Clients send only pongs and a close; tungstenite
/// zero-fills its read buffer up to this size before every read, which at its 128 KiB default
/// took about 18% of the server's CPU with 500 clients (a profile of the serve bench).
const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// The largest message or frame a client may send (a pong or a close is far smaller); a larger
/// one closes the connection instead of being buffered (tungstenite's default is 64 MiB).
const CLIENT_MAX_MESSAGE: usize = 16 * 1024;

/// Why a send failed: the client went away, or it stopped reading.
enum SendError {
    Gone,
    Timeout,
}

/// Sends one frame, bounded by `limit`: a client whose socket buffer stays full that long
/// does not read, and is closed rather than holding a task and a buffer forever.
async fn send<S>(sink: &mut S, m: Message, limit: Duration) -> Result<(), SendError>
where
    S: Sink<Message> + Unpin,
{
    bounded(tokio::time::timeout(limit, sink.send(m)).await)
}

/// A socket operation bounded by the send timeout, as a [`SendError`] when it failed.
fn bounded<E>(r: Result<Result<(), E>, tokio::time::error::Elapsed>) -> Result<(), SendError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Gone),
        Err(_) => Err(SendError::Timeout),
    }
}

/// The most queued events one write takes: a client that lags far behind still gets its frames
/// in bounded batches (each frame of a batch within the send timeout, see [`send_all`]).
const MAX_BATCH: usize = 64;

/// The frames of `first` and of the events already queued on `rx` behind it (at most
/// [`MAX_BATCH`]), advancing `at` past the views they carry; `true` when the client lagged
/// behind the channel while taking them (a resync is due after the frames are written).
fn take_queued(
    first: Published,
    rx: &mut broadcast::Receiver<Published>,
    client: Client,
    at: &mut Tick,
) -> (Vec<Message>, bool) {
    let mut frames = Vec::new();
    let mut next = Some(first);
    let mut taken = 0;
    let mut lagged = false;
    while let Some(p) = next.take() {
        taken += 1;
        let e = &p.event;
        // events at or before what the client holds are already in it
        let held = matches!(e, Event::Views(_)) && e.tick() <= *at;
        if !held {
            if wants(e, client.topics) {
                frames.push(client.frame(&p));
            }
            if matches!(e, Event::Views(_)) {
                *at = e.tick();
            }
        }
        if taken < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => next = Some(p),
                Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                // empty, or closed: the loop's next `recv` sees a close
                Err(_) => {}
            }
        }
    }
    (frames, lagged)
}

/// Writes `frames` with one flush. Each frame, and the flush, must be taken within `limit`, as
/// with one [`send`] per frame: a client that reads slowly but steadily is not closed for
/// being sent a batch.
async fn send_all<S>(sink: &mut S, frames: Vec<Message>, limit: Duration) -> Result<(), SendError>
where
    S: Sink<Message> + Unpin,
{
    if frames.is_empty() {
        return Ok(());
    }
    for m in frames {
        bounded(tokio::time::timeout(limit, sink.feed(m)).await)?;
    }
    bounded(tokio::time::timeout(limit, sink.flush()).await)
}

/// A client that fell behind the fan-out channel: counted, then sent a fresh snapshot.
async fn resync<S>(
    hub: &Hub,
    client: Client,
    sink: &mut S,
    limit: Duration,
    at: &mut Tick,
    on_resync: &impl Fn(),
) -> Result<(), SendError>
where
    S: Sink<Message> + Unpin,
{
    on_resync();
    if let Some((tick, m)) = snapshot(&hub.store, client) {
        if client.topics.any_rows() {
            send(sink, text(&m), limit).await?;
        }
        *at = tick;
    }
    Ok(())
}

/// The close reason for a failed send (`None`: the client left on its own).
fn closed_by(e: SendError) -> Option<&'static str> {
    match e {
        SendError::Gone => None,
        SendError::Timeout => Some(CLOSE_REASONS[0]),
    }
}

/// The client loop, generic over the socket halves so tests can drive it with channels.
/// Returns why the server closed the client, or `None` when the client left (or shutdown).
///
/// Bounds: a client that falls behind the fan-out channel gets a fresh snapshot (a resync);
/// a frame it does not take within `timing.send_timeout` closes it; a client that answers
/// no ping (and sends nothing) for `timing.pong_timeout` is closed.
pub async fn serve_client<S, R>(
    hub: Arc<Hub>,
    client: Client,
    since: Option<Tick>,
    timing: Timing,
    mut sink: S,
    mut stream: R,
    on_resync: impl Fn(),
) -> Option<&'static str>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let topics = client.topics;
    // subscribe before reading the state, so nothing falls between the two
    let mut rx = hub.sender.subscribe();
    let mut shutdown = hub.shutdown.subscribe();
    let limit = timing.send_timeout;
    let mut at: Tick;
    let resumed = since.and_then(|s| hub.since(s).map(|evs| (s, evs)));
    match resumed {
        Some((s, events)) => {
            at = s;
            for p in events {
                if wants(&p.event, topics) {
                    if let Err(e) = send(&mut sink, client.frame(&p), limit).await {
                        return closed_by(e);
                    }
                }
                at = at.max(p.event.tick());
            }
        }
        None => {
            let mut tries = 0;
            loop {
                if let Some((tick, m)) = snapshot(&hub.store, client) {
                    if topics.any_rows() {
                        if let Err(e) = send(&mut sink, text(&m), limit).await {
                            return closed_by(e);
                        }
                    }
                    at = tick;
                    break;
                }
                tries += 1;
                if tries > 600 {
                    let _ = send(&mut sink, Message::Close(None), limit).await;
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let mut beat = tokio::time::interval(timing.heartbeat);
    beat.tick().await;
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(p) => {
                    // this event and those already queued behind it (a burst of ticks, or a
                    // tick's diff and its case notice), written with one flush
                    let (frames, lagged) = take_queued(p, &mut rx, client, &mut at);
                    if let Err(e) = send_all(&mut sink, frames, limit).await {
                        return closed_by(e);
                    }
                    if lagged {
                        if let Err(e) = resync(&hub, client, &mut sink, limit, &mut at, &on_resync).await {
                            return closed_by(e);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Err(e) = resync(&hub, client, &mut sink, limit, &mut at, &on_resync).await {
                        return closed_by(e);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = beat.tick() => {
                if heard.elapsed() > timing.pong_timeout {
                    let frame = axum::extract::ws::CloseFrame {
                        code: axum::extract::ws::close_code::POLICY,
                        reason: "no pong: the client stopped answering pings".into(),
                    };
                    let _ = send(&mut sink, Message::Close(Some(frame)), limit).await;
                    return Some(CLOSE_REASONS[1]);
                }
                let m = ServerMessage::Heartbeat { tick: hub.store.tick() };
                if let Err(e) = send(&mut sink, text(&m), limit).await {
                    return closed_by(e);
                }
                if let Err(e) = send(&mut sink, Message::Ping(Default::default()), limit).await {
                    return closed_by(e);
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                // a pong, or anything else the client sends, shows it is reading
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = shutdown.changed() => {
                let frame = axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: "server shutting down".into(),
                };
                let _ = send(&mut sink, Message::Close(Some(frame)), limit).await;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpm_engine::store::{TickDiff, Update};
    use lpm_engine::views::{Metric, ViewRow};

    fn views(tick: Tick) -> Published {
        let diff = TickDiff {
            tick,
            diffs: vec![(
                ViewRow::Count(Metric::RowCount(lpm_engine::model::Table::CaseCases), 1),
                1,
            )],
            cases: vec![],
        };
        let event = Event::Views(Arc::new(Update::Diff(diff)));
        Arc::new(Publication::new(event, format!("views {tick}").into()))
    }

    fn cases(tick: Tick) -> Published {
        let event = Event::Cases(tick, Arc::new(vec![1]));
        Arc::new(Publication::new(event, format!("cases {tick}").into()))
    }

    fn texts(frames: &[Message]) -> Vec<String> {
        frames
            .iter()
            .map(|m| match m {
                Message::Text(t) => t.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn client() -> Client {
        Client {
            topics: Topics {
                views: true,
                cases: true,
                hotspots: None,
            },
        }
    }

    /// A channel of `capacity` holding `events`, and the first of them received from it.
    async fn queued(
        capacity: usize,
        events: impl IntoIterator<Item = Published>,
    ) -> (
        broadcast::Sender<Published>,
        broadcast::Receiver<Published>,
        Published,
    ) {
        let (tx, mut rx) = broadcast::channel(capacity);
        for p in events {
            tx.send(p).map_err(|_| "no receiver").expect("a receiver");
        }
        let first = rx
            .recv()
            .await
            .map_err(|e| e.to_string())
            .expect("an event");
        (tx, rx, first)
    }

    /// A burst already queued goes out in one write, in order; views the client already holds
    /// are left out, case notices are not.
    #[tokio::test]
    async fn queued_events_are_taken_in_order_in_one_batch() {
        let events = [views(2), cases(2), views(3), cases(3), views(4)];
        let (_tx, mut rx, first) = queued(16, events).await;
        let mut at = 3;
        let (frames, lagged) = take_queued(first, &mut rx, client(), &mut at);
        assert_eq!(texts(&frames), ["cases 2", "cases 3", "views 4"]);
        assert!(!lagged);
        assert_eq!(at, 4);
        assert!(rx.try_recv().is_err(), "everything was taken");
    }

    /// A client that falls behind while its batch is taken is told to resync; a long queue is
    /// taken in bounded batches.
    #[tokio::test]
    async fn a_batch_is_bounded_and_a_lag_inside_it_asks_for_a_resync() {
        let (tx, mut rx, first) = queued(4, [views(1)]).await;
        for t in 2..10 {
            tx.send(views(t))
                .map_err(|_| "no receiver")
                .expect("a receiver");
        }
        let mut at = 0;
        let (_, lagged) = take_queued(first, &mut rx, client(), &mut at);
        assert!(lagged);

        let (_tx, mut rx, first) = queued(256, (1..=100).map(views)).await;
        let mut at = 0;
        let (frames, lagged) = take_queued(first, &mut rx, client(), &mut at);
        assert_eq!(
            (frames.len(), lagged, at),
            (MAX_BATCH, false, MAX_BATCH as Tick)
        );
        assert_eq!(rx.len(), 100 - MAX_BATCH);
    }
}
