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

/// An event with its JSON texts, each serialised once for every client that takes it.
pub(crate) type Published = Arc<Publication>;

/// One published event.
pub(crate) struct Publication {
    pub(crate) event: Event,
    /// The text most clients take: views and case notices, no cells.
    pub(crate) json: Utf8Bytes,
    /// The texts of `hotspots` clients, whose rows depend on their topics and the cells their
    /// role sees: rendered by the first client of each kind, then shared (a handful of kinds,
    /// however many clients).
    variants: Mutex<Vec<(Topics, Utf8Bytes)>>,
}

impl Publication {
    /// `event` with `json`, the text most clients take.
    pub(crate) fn new(event: Event, json: Utf8Bytes) -> Publication {
        Publication {
            event,
            json,
            variants: Mutex::new(Vec::new()),
        }
    }

    /// The text of this event for a client of `topics`.
    pub(crate) fn text_for(&self, topics: Topics) -> Utf8Bytes {
        if topics.hotspots.is_none() || !matches!(self.event, Event::Views(_)) {
            return self.json.clone();
        }
        let mut variants = self.variants.lock();
        if let Some((_, text)) = variants.iter().find(|(k, _)| *k == topics) {
            return text.clone();
        }
        let text: Utf8Bytes = render(&self.event, topics)
            .and_then(|m| serde_json::to_string(&m).ok())
            .unwrap_or_default()
            .into();
        variants.push((topics, text.clone()));
        text
    }
}

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
        // what most clients take, rendered once; `hotspots` clients share one rendering per
        // kind (`Publication::text_for`)
        let all = Topics {
            views: true,
            cases: true,
            hotspots: None,
        };
        let json = render(&e, all)
            .and_then(|m| serde_json::to_string(&m).ok())
            .unwrap_or_default();
        let e: Published = Arc::new(Publication::new(e, json.into()));
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
        let oldest = recent.front().map(|p| p.event.tick());
        if since < current && oldest.is_none_or(|o| o > since + 1) {
            return None;
        }
        Some(
            recent
                .iter()
                .filter(|p| p.event.tick() > since)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::CellView;
    use lpm_engine::hotspots::CellFigures;
    use lpm_engine::store::TickDiff;
    use lpm_engine::views::ViewRow;

    fn publication(reports: i64) -> Publication {
        let figures = CellFigures {
            reports,
            open_cases: 1,
            open_minor_cases: 0,
        };
        let diff = TickDiff {
            tick: 7,
            diffs: vec![(
                ViewRow::Hotspot {
                    cell: 0x872a1072bffffff,
                    figures,
                },
                1,
            )],
            cases: vec![],
        };
        Publication {
            event: Event::Views(Arc::new(Update::Diff(diff))),
            json: "{}".into(),
            variants: Mutex::new(Vec::new()),
        }
    }

    /// `hotspots` clients of one kind share one text; another threshold gets its own rows.
    #[test]
    fn hotspot_texts_are_rendered_once_per_kind() {
        let p = publication(3);
        let everyone = CellView {
            resolution: lpm_engine::hotspots::Resolution::Seven,
            min_reports: 0,
        };
        let cells = Topics {
            views: true,
            cases: true,
            hotspots: Some(everyone),
        };
        let a = p.text_for(cells);
        let b = p.text_for(cells);
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "rendered twice");
        assert!(a.as_str().contains("\"open_cases\":1"), "{}", a.as_str());
        // a reader whose threshold is above the cell's reports does not get its row
        let reader = Topics {
            hotspots: Some(CellView {
                min_reports: 5,
                ..everyone
            }),
            ..cells
        };
        let text = p.text_for(reader);
        assert!(!text.as_str().contains("open_cases"), "{}", text.as_str());
        assert_eq!(p.variants.lock().len(), 2);
        // a client without the topic takes the common text
        let plain = Topics {
            hotspots: None,
            ..cells
        };
        assert_eq!(p.text_for(plain).as_str(), "{}");
    }
}
