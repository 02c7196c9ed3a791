//! `AppState`: what every handler can reach (the engine, the system of record, auth, metrics,
//! configuration, health).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use chrono_tz::Tz;
use lpm_engine::EngineHandle;

use crate::auth::AuthState;
pub use crate::cells::{CellView, HotspotsConfig};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use lpm_engine::model::Responsible;
use lpm_service::notify::{Candidate, Notifier};
use lpm_service::sor::ledger::Command;
use lpm_service::sor::{Committed, WriteError, Writer};
use lpm_service::source::Source;

/// Serving options.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Zone for local times (reports' `last_seen_at`, Grafana's "browser" zone).
    pub tz: Tz,
    /// How long a read may wait for the engine.
    pub read_timeout: Duration,
    /// How long a write waits for the engine to show it before answering 202.
    pub visible_timeout: Duration,
    /// Per-WebSocket-client queue of ticks before it is resynchronised.
    pub ws_queue: usize,
    /// WebSocket heartbeat interval.
    pub heartbeat: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A WebSocket frame the client does not take within this closes it (it stopped reading).
    pub ws_send_timeout: Duration,
    /// A WebSocket client that answers no ping for this long is closed.
    pub ws_pong_timeout: Duration,
    /// Origins besides the server's own that may open the WebSocket stream
    /// (`--allowed-origins`, e.g. `https://lpm.example.org` behind a reverse proxy).
    pub allowed_origins: Vec<String>,
    /// Where published cases' pages are reached from outside (`--public-base-url`, no trailing
    /// slash): `case.public_url` and the poster's QR code are this plus
    /// `/public/cases/{public_id}`. Empty in `ServeConfig`: the server puts the address it
    /// bound there.
    pub public_base_url: String,
    /// The `hotspots` view: its resolution and what read-only tokens may see of it.
    pub hotspots: HotspotsConfig,
    /// This process's place in a cluster (`--peers`); `None`: a single process.
    pub cluster: Option<ClusterPlace>,
}

/// Where a process sits in a cluster. Process 0 serves the API; the others serve only
/// `/healthz`, `/readyz` and `/metrics`, for their own part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterPlace {
    /// This process (0-based).
    pub process: usize,
    /// Processes in the cluster.
    pub processes: usize,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            tz: chrono_tz::America::Guayaquil,
            read_timeout: Duration::from_secs(5),
            visible_timeout: Duration::from_secs(5),
            ws_queue: 64,
            heartbeat: Duration::from_secs(15),
            max_body_bytes: 64 * 1024,
            ws_send_timeout: Duration::from_secs(10),
            ws_pong_timeout: Duration::from_secs(45),
            allowed_origins: Vec::new(),
            public_base_url: "http://127.0.0.1:8080".into(),
            hotspots: HotspotsConfig::default(),
            cluster: None,
        }
    }
}

/// Liveness and readiness.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// Marks the state rebuilt and the sources caught up.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// Marks the server as shutting down (readiness drops, writes answer 503).
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Engine reads.
    pub engine: EngineHandle,
    /// What feeds the engine (the embedded log is the write side too).
    pub source: Source,
    /// Writes go to MySQL (`lpm serve --mysql`, beside a source that reads MySQL's changes).
    pub mysql: Option<Arc<lpm_service::sor::mysql::MysqlSor>>,
    /// Users, tokens, sessions.
    pub auth: AuthState,
    /// Prometheus registry and instruments.
    pub metrics: Arc<Metrics>,
    /// Options.
    pub config: Arc<ApiConfig>,
    /// Health.
    pub health: Arc<Health>,
    /// WebSocket fan-out.
    pub hub: Arc<crate::hub::Hub>,
    /// Checkpoint and recovery instruments (the engine page shows them).
    pub checkpoints: Option<Arc<lpm_service::checkpoint::CheckpointMetrics>>,
    /// Published cases: the public-id index and the public routes' rate limits.
    pub public: Arc<crate::public::side::Public>,
    /// Notifications (`--notify-*`); `None` when no target is configured.
    pub notifier: Option<Arc<Notifier>>,
    /// Auto-assignment (`--auto-assign`); `None` when off.
    pub auto_assign: Option<Arc<lpm_service::sor::auto_assign::AutoAssign>>,
}

/// The system of record with the notifications beside it: what [`AppState::writer`] hands
/// out, so every write route (the public page's too) queues the notification of its write
/// after the write commits and before it is answered.
#[derive(Clone)]
pub struct NotifyingWriter {
    writer: Writer,
    notifier: Option<Arc<Notifier>>,
}

impl NotifyingWriter {
    /// Validates and writes `cmd` as `actor`, then puts the notification it produces (if a
    /// rule fires) in the outbox. A failure to queue is logged, not returned: the write is
    /// committed, and a client that retried it would file it twice.
    pub async fn submit(&self, cmd: Command, actor: String) -> Result<Committed, WriteError> {
        // taken before the command moves into the write: only what a notification may carry
        let candidate = self.notifier.as_ref().map(|_| Candidate::of(&cmd));
        let committed = self.writer.submit(cmd, actor).await?;
        let (Some(notifier), Some(candidate)) = (self.notifier.clone(), candidate) else {
            return Ok(committed);
        };
        let (c, id) = (committed.clone(), committed.id);
        match tokio::task::spawn_blocking(move || notifier.record(&candidate, &c)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, id, "Could not queue the notification of a committed write.")
            }
            Err(e) => tracing::error!(error = %e, id, "The notification task failed."),
        }
        Ok(committed)
    }

    /// Every contact, by id, from the system of record.
    pub async fn responsibles(&self) -> Result<Vec<Arc<Responsible>>, WriteError> {
        self.writer.responsibles().await
    }

    /// The system of record without the notifications (auto-assignment's retry: its writes
    /// match no notification rule).
    pub fn inner(&self) -> &Writer {
        &self.writer
    }
}

impl FromRef<AppState> for AuthState {
    fn from_ref(s: &AppState) -> AuthState {
        s.auth.clone()
    }
}

impl AppState {
    /// The system of record writes go to: the embedded log, or MySQL with `--mysql`; a
    /// capture-fed server without `--mysql` is read-only, so writes answer 503 naming why.
    pub fn writer(&self) -> ApiResult<NotifyingWriter> {
        let writer = match (self.source.embedded(), &self.mysql) {
            (Some(sor), _) => Writer::Embedded(sor.clone()),
            (None, Some(mysql)) => Writer::Mysql(mysql.clone()),
            (None, None) => {
                return Err(ApiError::Unavailable {
                    message:
                        "this server shows data read from MySQL (--capture) or Kafka (--kafka) \
                          and takes no writes; write to MySQL instead, or start it with --mysql URL"
                            .into(),
                    retry_after: 3600,
                })
            }
        };
        Ok(NotifyingWriter {
            writer,
            notifier: self.notifier.clone(),
        })
    }

    /// Where the source stood at `tick`.
    pub fn position_at(&self, tick: lpm_engine::Tick) -> lpm_service::position::SourcePosition {
        self.source.position_at(tick)
    }

    /// Ticks that became visible (freshness metrics) and since when the oldest invisible one
    /// waits (staleness).
    pub fn take_visible(
        &self,
        visible: Option<lpm_engine::Tick>,
    ) -> (
        Vec<lpm_service::sor::PushedTick>,
        Option<std::time::Instant>,
    ) {
        self.source.take_visible(visible)
    }

    /// Runs `cmd` as `who` on the system of record (and queues its notification: see
    /// [`NotifyingWriter`]).
    pub async fn submit(&self, cmd: Command, who: String) -> ApiResult<Committed> {
        Ok(self.writer()?.submit(cmd, who).await?)
    }

    /// Writes answer 503 once shutdown has begun (in-flight ones still finish).
    pub fn refuse_writes_when_stopping(&self) -> ApiResult<()> {
        if self.health.is_stopping() {
            return Err(ApiError::Unavailable {
                message: "the server is shutting down".into(),
                retry_after: 5,
            });
        }
        Ok(())
    }

    /// Runs blocking work (engine reads, log appends) off the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
    }
}

/// Maps engine errors: none of them is the client's fault, all are temporary.
pub fn engine_error(e: lpm_engine::EngineError) -> ApiError {
    ApiError::Unavailable {
        message: format!("engine: {e}"),
        retry_after: 1,
    }
}

/// The sensitive-open-cases table of the Grafana API, read from the engine's case model.
pub struct EngineCases {
    engine: EngineHandle,
    timeout: Duration,
}

impl crate::grafana::CaseSource for EngineCases {
    fn sensitive_open(&self) -> ApiResult<Vec<crate::grafana::SensitiveCase>> {
        let pred: lpm_engine::CasePredicate =
            Arc::new(|r: &lpm_engine::CaseRecord| r.is_sensitive());
        let (_, records) = self
            .engine
            .cases(pred, self.timeout)
            .map_err(engine_error)?;
        Ok(records
            .into_iter()
            .map(|r| crate::grafana::SensitiveCase {
                case_id: r.case.id,
                opened_at: r.case.opened_at,
                status: r.case.status.clone(),
                priority: r.case.priority.clone(),
                age: r.person.as_ref().and_then(|p| p.age),
                gender: r
                    .person
                    .as_ref()
                    .map_or(lpm_engine::views::Gender::Unknown, |p| {
                        lpm_engine::views::Gender::normalise(&p.gender)
                    }),
                full_name: r
                    .person
                    .as_ref()
                    .map(|p| p.full_name.clone())
                    .unwrap_or_default(),
                last_seen_place: r
                    .person
                    .as_ref()
                    .map(|p| p.last_seen_place.clone())
                    .unwrap_or_default(),
                responsible: r.responsible.as_ref().map(|x| x.full_name.clone()),
            })
            .collect())
    }
}

impl FromRef<AppState> for crate::grafana::GrafanaState {
    fn from_ref(s: &AppState) -> crate::grafana::GrafanaState {
        crate::grafana::GrafanaState {
            store: s.engine.store().clone(),
            default_tz: s.config.tz,
            cases: Arc::new(EngineCases {
                engine: s.engine.clone(),
                timeout: s.config.read_timeout,
            }),
        }
    }
}
