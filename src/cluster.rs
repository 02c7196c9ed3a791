//! The cluster flags (`--peers`, `--process`, `--peer-timeout-s`) and what a command does with
//! them: check them, and wait for a cluster run while watching for a lost peer. The cluster
//! itself is timely's (`lpm_engine::cluster`); see docs/scale-out.md. Used by `lpm replay` and
//! `lpm serve --kafka`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use lpm_engine::cluster::{split_peers, ClusterConfig};
use lpm_engine::{Engine, RunSummary};

/// Flags that make this process one of a timely cluster.
#[derive(Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Run as one process of a cluster: every process's HOST:PORT, comma-separated, in process
    /// order, the same list on every process. This process listens on its own entry.
    #[arg(long, env = "LPM_PEERS", value_name = "HOST:PORT,...")]
    pub peers: Option<String>,
    /// This process's index into --peers (needs --peers): process 0 prints the views of
    /// `lpm replay` and serves the API of `lpm serve`.
    #[arg(long, env = "LPM_PROCESS", value_name = "I")]
    pub process: Option<usize>,
    /// How long to wait for every peer to join the cluster before giving up, in seconds.
    #[arg(
        long,
        env = "LPM_PEER_TIMEOUT_S",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub peer_timeout_s: u64,
}

impl ClusterArgs {
    /// The cluster to join, if any; `settings` are what every process must share (the engine
    /// adds the worker threads and the peer list).
    pub fn config(&self, settings: Vec<(String, String)>) -> anyhow::Result<Option<ClusterConfig>> {
        let Some(peers) = &self.peers else {
            if self.process.is_some() {
                bail!("--process needs --peers (the address of every process of the cluster)");
            }
            return Ok(None);
        };
        let Some(process) = self.process else {
            bail!("--peers needs --process (this process's index into the list, from 0)");
        };
        let mut settings = settings;
        settings.push(("lpm version".into(), crate::VERSION.into()));
        let mut config = ClusterConfig::new(
            process,
            split_peers(peers),
            Duration::from_secs(self.peer_timeout_s),
        )?;
        config.settings = settings;
        Ok(Some(config))
    }
}

/// Waits until `done` says the run is complete (it waits up to the duration it is given), or
/// `engine`'s workers have stopped early; fails at once when a cluster thread failed (a lost
/// peer), since a cluster is fail-stop and the threads of a broken cluster may never finish,
/// or when `stop` fails (this process cannot go on: its input broke). `tick` runs between
/// checks (progress).
pub fn wait(
    engine: &Engine,
    stop: &dyn Fn() -> anyhow::Result<()>,
    mut done: impl FnMut(Duration) -> bool,
    mut tick: impl FnMut(),
) -> anyhow::Result<()> {
    loop {
        lost_peer()?;
        stop()?;
        if engine.is_finished() || done(Duration::from_millis(200)) {
            return Ok(());
        }
        tick();
    }
}

/// [`Engine::join`] (which releases the engine's read handle, so the workers can end, and
/// waits for them: in a cluster they end together with every peer's), watching for a lost peer
/// and `stop` meanwhile like [`wait`].
pub fn join(
    engine: Engine,
    stop: &dyn Fn() -> anyhow::Result<()>,
    mut tick: impl FnMut(),
) -> anyhow::Result<RunSummary> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lpm-join".into())
        .spawn(move || drop(tx.send(engine.join())))?;
    loop {
        lost_peer()?;
        stop()?;
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(summary)) => return Ok(summary),
            Ok(Err(e)) => {
                lost_peer()?;
                return Err(e.into());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => tick(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                lost_peer()?;
                bail!("the engine thread ended without a result");
            }
        }
    }
}

fn lost_peer() -> anyhow::Result<()> {
    match lpm_engine::cluster::failure() {
        Some(failure) => {
            bail!("{failure}; a cluster is fail-stop, so this process stops too (no views written)")
        }
        None => Ok(()),
    }
}
