//! Public id → case id, for the public case page.
//!
//! Why an index and not a scan per request: the page needs no sign-in, so anyone can ask for any
//! id; a full scan of the case read model per request would let a stranger make the server
//! walk every case at will. The index is a hash map of the cases that ever got a public id
//! (never more entries than cases published), so a lookup is O(1), and a miss, which is what a
//! guessed id gets, costs nothing else.
//!
//! Why it may hold unpublished cases: a public id, once made, never changes (an unpublished and
//! republished case keeps its link), so an entry is never wrong about which case an id names.
//! Whether the case is published *now* is read from the engine at the request's tick, so
//! unpublishing takes effect at once; the index only saves the search.
//!
//! How it keeps up: a thread scans the published cases once the engine has its first tick,
//! then reads the cases each tick names as changed (the store's subscription, in tick order).
//! A publication made through this server is also inserted by the write itself before it
//! answers, so its link works as soon as the `PATCH` returns; one made by another writer
//! (Kafka, the binlog capture) appears within one pass after its tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lpm_engine::model::Key;
use lpm_engine::store::Update;
use lpm_engine::{CaseRecord, EngineHandle};
use parking_lot::RwLock;

/// A tick naming more changed cases than this is handled with one scan of the published cases
/// instead of one read per case (a replay, a re-snapshot, a resynchronised subscription).
const POINT_READS_MAX: usize = 64;
/// Updates the subscription holds before it resynchronises.
const QUEUE: usize = 1024;

/// The index (see the module doc).
#[derive(Default)]
pub struct PublicIndex {
    ids: RwLock<HashMap<String, Key>>,
    stop: AtomicBool,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PublicIndex {
    /// An index kept up to date by a thread reading `engine` until [`PublicIndex::stop`] (or
    /// until the index is dropped).
    pub fn start(engine: EngineHandle, read_timeout: Duration) -> Arc<PublicIndex> {
        let index = Arc::new(PublicIndex::default());
        let weak = Arc::downgrade(&index);
        let spawned = std::thread::Builder::new()
            .name("lpm-public-index".into())
            .spawn(move || follow(&weak, &engine, read_timeout));
        match spawned {
            Ok(t) => *index.thread.lock() = Some(t),
            Err(e) => {
                tracing::error!(error = %e, "The public-page index thread did not start; published pages answer 404 until a write names them.")
            }
        }
        index
    }

    /// Stops the thread and waits for it (a quarter of a second at most), so that its engine
    /// handle is gone before the engine stops: the engine answers reads while any handle lives.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("The public-page index thread panicked.");
            }
        }
    }

    /// The case a public id names, if any case ever had it.
    pub fn get(&self, public_id: &str) -> Option<Key> {
        self.ids.read().get(public_id).copied()
    }

    /// Records that `case_id` has `public_id` (the write path calls this before answering).
    pub fn insert(&self, public_id: &str, case_id: Key) {
        let mut ids = self.ids.write();
        if ids.get(public_id) != Some(&case_id) {
            ids.insert(public_id.to_string(), case_id);
        }
    }

    /// How many ids the index holds.
    pub fn len(&self) -> usize {
        self.ids.read().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn add(&self, records: impl IntoIterator<Item = CaseRecord>) {
        for r in records {
            if let Some(id) = &r.case.public_id {
                self.insert(id, r.case.id);
            }
        }
    }
}

fn has_public_id(r: &CaseRecord) -> bool {
    r.case.public_id.is_some()
}

/// The thread: a first scan, then the changed cases of every tick.
fn follow(index: &Weak<PublicIndex>, engine: &EngineHandle, timeout: Duration) {
    let store = engine.store().clone();
    let subscription = store.subscribe(QUEUE);
    let live = || index.upgrade().filter(|i| !i.stop.load(Ordering::SeqCst));
    let mut through = loop {
        let Some(index) = live() else { return };
        match engine.cases(Arc::new(has_public_id), timeout) {
            Ok((tick, records)) => {
                index.add(records);
                break tick;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    // after a failed read, the next pass scans every published case instead
    let mut rescan = false;
    loop {
        let update = subscription.recv_timeout(Duration::from_millis(250));
        let Some(index) = live() else { return };
        let Some(update) = update else { continue };
        let tick = match &update {
            Update::Diff(d) => d.tick,
            Update::Resync { tick, .. } => *tick,
        };
        if tick <= through {
            continue;
        }
        let cases = update.cases();
        let read = if rescan || cases.len() > POINT_READS_MAX {
            engine
                .cases(Arc::new(has_public_id), timeout)
                .map(|(_, records)| index.add(records))
        } else {
            cases.iter().try_for_each(|&id| {
                engine
                    .case(id, timeout)
                    .map(|d| index.add(d.map(|d| d.record)))
            })
        };
        match read {
            Ok(()) => (through, rescan) = (tick, false),
            Err(e) => {
                rescan = true;
                tracing::warn!(tick, error = %e, "The public-page index could not read a tick's cases; it scans them all at the next tick.");
            }
        }
    }
}
