//! The WebSocket fan-out: one thread subscribes to the engine's view store and republishes
//! each tick's diff, then its case notice, on a bounded broadcast channel, each serialised
//! once; the last few are kept so a client can resume after a tick it saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use lpm_engine::store::Update;
use lpm_engine::{Tick, ViewStore};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::wire::{render, Event, Topics};

/// The fan-out: one store subscription, many clients.
pub struct Hub {
    pub(crate) sender: broadcast::Sender<Published>,
    recent: Mutex<VecDeque<Published>>,
    pub(crate) store: Arc<ViewStore>,
    pub(crate) shutdown: watch::Sender<bool>,
}

/// An event with its JSON text, serialised once for every client.
pub(crate) type Published = Arc<(Event, Utf8Bytes)>;

/// How many published events are kept for `since` resumption.
const RECENT: usize = 512;

impl Hub {
    /// Starts the fan-out thread.
    pub fn start(store: Arc<ViewStore>, capacity: usize) -> Arc<Hub> {
        let (sender, _) = broadcast::channel(capacity.max(16));
        let (shutdown, _) = watch::channel(false);
        let hub = Arc::new(Hub {
            sender,
            recent: Mutex::new(VecDeque::new()),
            store: store.clone(),
            shutdown,
        });
        let weak = Arc::downgrade(&hub);
        let spawned = std::thread::Builder::new()
            .name("lpm-ws-hub".into())
            .spawn(move || {
                let sub = store.subscribe(4096);
                loop {
                    let update = sub.recv_timeout(Duration::from_millis(20));
                    let Some(hub) = weak.upgrade() else { return };
                    if let Some(u) = update {
                        hub.publish_update(u);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Could not start the WebSocket fan-out thread.");
        }
        hub
    }

    /// Publishes one store update: the tick's diff (or resync snapshot), then its case notice,
    /// so a client that reacts to a notice already holds the views of that tick. A tick whose
    /// views did not change sends only the notice.
    fn publish_update(&self, u: Update) {
        let tick = match &u {
            Update::Diff(d) => d.tick,
            Update::Resync { tick, .. } => *tick,
        };
        let cases = u.cases().to_vec();
        if !matches!(&u, Update::Diff(d) if d.diffs.is_empty()) {
            self.publish(Event::Views(Arc::new(u)));
        }
        if !cases.is_empty() {
            self.publish(Event::Cases(tick, Arc::new(cases)));
        }
    }

    fn publish(&self, e: Event) {
        // what most clients take, rendered once; a `hotspots` client renders its own
        // (its rows depend on its role's threshold)
        let all = Topics {
            views: true,
            cases: true,
            hotspots: false,
        };
        let json = render(&e, all, 0)
            .and_then(|m| serde_json::to_string(&m).ok())
            .unwrap_or_default();
        let e: Published = Arc::new((e, json.into()));
        let mut recent = self.recent.lock();
        recent.push_back(e.clone());
        while recent.len() > RECENT {
            recent.pop_front();
        }
        // no receivers is fine
        let _ = self.sender.send(e);
    }

    /// Closes every client with a close frame.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Events after `since` if they are all still kept (`None` otherwise: send a snapshot).
    pub(crate) fn since(&self, since: Tick) -> Option<Vec<Published>> {
        let recent = self.recent.lock();
        let current = self.store.tick()?;
        if since > current {
            return None;
        }
        // the kept window must reach back to the tick after `since`
        let oldest = recent.front().map(|p| p.0.tick());
        if since < current && oldest.is_none_or(|o| o > since + 1) {
            return None;
        }
        Some(
            recent
                .iter()
                .filter(|p| p.0.tick() > since)
                .cloned()
                .collect(),
        )
    }
}
