//! The soak bench's sampler: every few seconds, the server's `VmRSS` and CPU from
//! `/proc/<pid>`, a `/metrics` scrape (WebSocket clients and resyncs, state rows, arrangement
//! records, tick), how many reading clients ended, and the non-readers' sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::report::{proc_status, process_cpu_seconds};
use crate::serve_http::{parse_scalar, sum_series, Client};
use crate::serve_ws::Progress;
use crate::ws_silent::{tcp_view, TcpView};

/// One sample of the server and the clients.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Seconds since the run's epoch.
    pub at_s: f64,
    /// Taken while the writers ran.
    pub writing: bool,
    pub rss: u64,
    /// CPU seconds the server used so far.
    pub server_cpu: f64,
    pub ws_clients: Option<f64>,
    pub ws_resyncs: Option<f64>,
    pub state_rows: Option<f64>,
    pub arrangement_records: Option<f64>,
    pub tick: Option<f64>,
    /// Reading clients that ended (closed by the server, or an error), so far.
    pub readers_ended: usize,
    pub silent: TcpView,
}

/// What to sample.
pub struct Targets {
    pub base: String,
    /// The server's process id.
    pub pid: String,
    /// The reading clients' counters.
    pub readers: Arc<Progress>,
    /// The non-readers' local ports and the server's port.
    pub silent_ports: Vec<u16>,
    pub server_port: u16,
}

/// A running sampler.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    /// Set while the writers run (each sample records it).
    pub writing: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    /// Samples every `every` from now until [`Sampler::stop`].
    pub fn start(t: Targets, every: Duration, epoch: Instant) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let writing = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (stop2, writing2, samples2, errors2) = (
            stop.clone(),
            writing.clone(),
            samples.clone(),
            errors.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("soak-sampler".into())
            .spawn(move || {
                let metrics = Client::new(&t.base, ("X-Bench", "soak".into()));
                let start = Instant::now();
                let mut n = 0u32;
                while !stop2.load(Ordering::Relaxed) {
                    let text = match metrics.get("/metrics") {
                        Ok(r) if r.status == 200 => r.body,
                        Ok(r) => {
                            errors2
                                .lock()
                                .push(format!("metrics scrape: HTTP {}", r.status));
                            String::new()
                        }
                        Err(e) => {
                            errors2
                                .lock()
                                .push(format!("metrics scrape: transport ({e})"));
                            String::new()
                        }
                    };
                    let s = Sample {
                        at_s: epoch.elapsed().as_secs_f64(),
                        writing: writing2.load(Ordering::Relaxed),
                        rss: proc_status(&t.pid, "VmRSS:"),
                        server_cpu: process_cpu_seconds(&t.pid),
                        ws_clients: parse_scalar(&text, "lpm_ws_clients"),
                        ws_resyncs: parse_scalar(&text, "lpm_ws_resyncs_total"),
                        state_rows: sum_series(&text, "lpm_upsert_state_rows"),
                        arrangement_records: sum_series(&text, "lpm_arrangement_records"),
                        tick: parse_scalar(&text, "lpm_engine_tick"),
                        readers_ended: t.readers.ended.load(Ordering::Relaxed),
                        silent: tcp_view(&t.silent_ports, t.server_port),
                    };
                    samples2.lock().push(s);
                    n += 1;
                    let next = start + every * n;
                    while Instant::now() < next && !stop2.load(Ordering::Relaxed) {
                        std::thread::sleep(
                            next.saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(100)),
                        );
                    }
                }
            })?;
        Ok(Sampler {
            stop,
            writing,
            samples,
            errors,
            thread,
        })
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.samples.lock().last().cloned()
    }

    /// Stops sampling; returns every sample and the failed scrapes (`"metrics scrape: ..."`).
    pub fn stop(self) -> (Vec<Sample>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let samples = std::mem::take(&mut *self.samples.lock());
        let errors = std::mem::take(&mut *self.errors.lock());
        (samples, errors)
    }
}
