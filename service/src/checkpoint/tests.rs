//! Restarts from checkpoints against full replays of the same embedded log: the same views,
//! case details, versions and write ledger, for another worker count too; a corrupt, torn or
//! unreadable newest checkpoint falls back to the previous one, then to a full replay.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lpm_engine::model::{Priority, Status};
use lpm_engine::read::CaseDetail;

use super::file::Manifest;
use super::store::{self, CheckpointDir};
use crate::pipeline::tests::{config, start_ready_with};
use crate::pipeline::Service;
use crate::sor::ledger::{Command, NewAction, NewReport};
use crate::sor::{Committed, EmbeddedSor};

/// Starts a pipeline on `dir` with `workers` workers and waits until it is ready.
pub(crate) async fn start(dir: &Path, workers: usize) -> Service {
    let mut cfg = config(dir);
    cfg.workers = workers;
    start_ready_with(cfg).await
}

pub(crate) fn sor(service: &Service) -> Arc<EmbeddedSor> {
    service
        .source()
        .embedded()
        .expect("the embedded log")
        .clone()
}

async fn submit(sor: &Arc<EmbeddedSor>, cmd: Command) -> Option<Committed> {
    sor.submit_async(cmd, "test".into()).await.ok()
}

/// A small demo history (reports, assignments, actions, status changes over ten days).
pub(crate) async fn history(service: &Service) {
    let sor = sor(service);
    let size = crate::demo::DemoSize {
        reports: 250,
        days: 10,
        responsibles: 5,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let loaded = tokio::task::spawn_blocking(move || crate::demo::load(&sor, size, now))
        .await
        .expect("join")
        .expect("demo history");
    assert!(loaded > 250, "{loaded} commands");
}

/// Writes after a checkpoint: status changes, reassignments and actions on existing cases,
/// and new reports; waits until the engine shows the last one.
pub(crate) async fn tail(service: &Service, round: i64) {
    let sor = sor(service);
    let ids: Vec<i64> = sor.with_ledger(|l| l.case_ids().collect());
    let responsibles = sor.with_ledger(|l| l.active_responsibles());
    let mut last = None;
    for (i, &id) in ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == round as usize % 7)
    {
        let version = sor
            .with_ledger(|l| l.case(id).map(|c| c.version))
            .unwrap_or(1);
        let status = sor.with_ledger(|l| l.case(id).map(|c| c.status.clone()));
        if status.is_some_and(|s| s.is_open()) {
            last = submit(
                &sor,
                Command::UpdateCase {
                    case_id: id,
                    version,
                    status: Some(Status::InProgress),
                    priority: Some(Priority::High),
                    public: None,
                },
            )
            .await
            .or(last);
        }
        if let Some(&r) = responsibles.get(i % responsibles.len().max(1)) {
            let version = sor
                .with_ledger(|l| l.case(id).map(|c| c.version))
                .unwrap_or(1);
            last = submit(
                &sor,
                Command::Assign {
                    case_id: id,
                    version,
                    responsible_id: r,
                },
            )
            .await
            .or(last);
        }
        last = submit(
            &sor,
            Command::LogAction {
                case_id: id,
                action: NewAction {
                    action_type: "note".into(),
                    notes: Some(format!("round {round}")),
                    responsible_id: None,
                },
            },
        )
        .await
        .or(last);
    }
    for k in 0..10 {
        let report = NewReport {
            full_name: format!("Tail Person {round}-{k}"),
            age: Some(20 + k),
            gender: ["female", "male", "other"][k as usize % 3].into(),
            last_seen_at: 1_790_000_000_000 + k * 3_600_000,
            last_seen_place: "Quito".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            priority: Priority::Medium,
            responsible_id: responsibles.first().copied(),
            first_action: None,
            reported_at: None,
        };
        last = submit(&sor, Command::CreateReport(Box::new(report)))
            .await
            .or(last);
    }
    let last = last.expect("the tail wrote something");
    assert!(service
        .engine()
        .store()
        .wait_for(last.tick, Duration::from_secs(30)));
}

/// Every case as the engine shows it, by id, without the tick it was read at.
fn details(service: &Service) -> Vec<CaseDetail> {
    let ids: Vec<i64> = sor(service).with_ledger(|l| {
        let mut v: Vec<i64> = l.case_ids().collect();
        v.sort_unstable();
        v
    });
    ids.into_iter()
        .map(|id| {
            let mut d = service
                .engine()
                .case(id, Duration::from_secs(10))
                .expect("read")
                .unwrap_or_else(|| panic!("case {id} in the engine"));
            d.tick = 0;
            d
        })
        .collect()
}

/// `b` shows exactly what `a` shows: views, case details and the write ledger.
fn assert_same(a: &Service, b: &Service, what: &str) {
    let (_, va) = a.engine().store().snapshot();
    let (_, vb) = b.engine().store().snapshot();
    assert!(!va.is_empty(), "{what}: no views");
    assert_eq!(va, vb, "{what}: views");
    assert_eq!(details(a), details(b), "{what}: case details");
    let (la, lb) = (sor(a), sor(b));
    assert!(
        la.with_ledger(|x| lb.with_ledger(|y| x == y)),
        "{what}: write ledgers differ"
    );
}

/// Copies a data directory as a crash would leave it (everything fsync'd is there).
pub(crate) fn copy_dir(from: &Path, to: &Path, with_checkpoints: bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if !with_checkpoints && name == store::DIR {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target, true);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub(crate) async fn checkpoint(service: &Service) -> Manifest {
    service
        .checkpoint_now()
        .await
        .expect("checkpoint")
        .expect("not skipped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_a_checkpoint_equals_a_full_replay_for_any_worker_count() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir, c_dir) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    let a = start(&a_dir, 2).await;
    history(&a).await;
    let manifest = checkpoint(&a).await;
    assert_eq!(manifest.workers, 2);
    assert!(manifest.total_entries() > 500, "{manifest:?}");
    assert!(manifest.position.log_seq() > 0);
    tail(&a, 1).await;
    // a crash now: the checkpoint and the log tail after it are on disk
    copy_dir(&a_dir, &b_dir, true);
    copy_dir(&a_dir, &c_dir, false);

    let b = start(&b_dir, 3).await;
    let c = start(&c_dir, 1).await;
    let (rb, rc) = (b.recovery().clone(), c.recovery().clone());
    assert_eq!(
        rb.checkpoint.as_ref().map(|m| m.number),
        Some(manifest.number)
    );
    assert_eq!(rb.restored_entries, manifest.total_entries());
    assert!(rc.checkpoint.is_none() && rc.restored_entries == 0);
    assert!(
        rb.replayed_events > 0 && rb.replayed_events < rc.replayed_events,
        "only the tail is replayed: {} of {}",
        rb.replayed_events,
        rc.replayed_events
    );
    assert_same(&a, &b, "checkpoint (3 workers) vs the running server (2)");
    assert_same(&c, &b, "checkpoint (3 workers) vs full replay (1)");

    // the write side goes on identically: same ids, same versions
    let (sb, sc) = (sor(&b), sor(&c));
    let id = sb.with_ledger(|l| l.case_ids().max()).expect("a case");
    let version = sb
        .with_ledger(|l| l.case(id).map(|c| c.version))
        .expect("case");
    for cmd in [
        Command::UpdateCase {
            case_id: id,
            version,
            status: Some(Status::InProgress),
            priority: None,
            public: None,
        },
        Command::CreateResponsible(crate::sor::ledger::ResponsibleFields {
            full_name: Some("New Contact".into()),
            agency: Some("ECU 911".into()),
            ..Default::default()
        }),
    ] {
        let on_b = submit(&sb, cmd.clone()).await.expect("write on b");
        let on_c = submit(&sc, cmd).await.expect("write on c");
        assert_eq!((on_b.id, on_b.version), (on_c.id, on_c.version));
    }
    drop((sb, sc));
    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_newest_checkpoint_falls_back_to_the_previous_then_to_a_full_replay() {
    let root = tempfile::tempdir().expect("tempdir");
    let a_dir = root.path().join("a");
    let a = start(&a_dir, 2).await;
    history(&a).await;
    let first = checkpoint(&a).await;
    tail(&a, 1).await;
    let second = checkpoint(&a).await;
    assert!(second.number > first.number);
    tail(&a, 2).await;
    let full = root.path().join("full");
    copy_dir(&a_dir, &full, false);
    let c = start(&full, 2).await;

    type Damage = fn(&Path, &Manifest);
    let flip: Damage = |dir, m| {
        let path = dir.join(&m.state_file);
        let mut bytes = std::fs::read(&path).expect("state");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, bytes).expect("write");
    };
    let tear: Damage = |dir, m| {
        let path = dir.join(&m.state_file);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_len(m.state_bytes / 3).expect("truncate");
    };
    let garble: Damage = |dir, m| {
        let path = dir.join(format!("checkpoint-{:012}.json", m.number));
        std::fs::write(path, b"{\"format\": 1, \"numb").expect("write");
    };
    let lose: Damage = |dir, m| std::fs::remove_file(dir.join(&m.state_file)).expect("rm");
    for (name, damage) in [
        ("flipped byte", flip),
        ("torn", tear),
        ("garbled manifest", garble),
        ("missing state", lose),
    ] {
        let dir = root.path().join(name.replace(' ', "-"));
        copy_dir(&a_dir, &dir, true);
        let ckpt = CheckpointDir::open(&dir).expect("dir");
        damage(ckpt.path(), &second);
        let b = start(&dir, 2).await;
        let r = b.recovery().clone();
        assert_eq!(
            r.checkpoint.as_ref().map(|m| m.number),
            Some(first.number),
            "{name}: falls back to the previous checkpoint"
        );
        assert_eq!(r.rejected.len(), 1, "{name}: {:?}", r.rejected);
        assert_eq!(b.checkpoints().fallbacks.get(), 1);
        assert_same(&c, &b, name);
        b.stop().await;
    }

    // both damaged: a full replay, still the same state
    let dir = root.path().join("both");
    copy_dir(&a_dir, &dir, true);
    let ckpt = CheckpointDir::open(&dir).expect("dir");
    flip(ckpt.path(), &second);
    tear(ckpt.path(), &first);
    let b = start(&dir, 2).await;
    assert!(b.recovery().checkpoint.is_none());
    assert_eq!(b.recovery().rejected.len(), 2);
    assert_same(&c, &b, "both checkpoints bad");
    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_a_checkpoint_of_everything_and_keeps_two() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("d");
    let a = start(&dir, 2).await;
    history(&a).await;
    for round in 0..3 {
        tail(&a, round).await;
        checkpoint(&a).await;
    }
    tail(&a, 3).await;
    a.stop().await;
    let ckpt = CheckpointDir::open(&dir).expect("dir");
    assert_eq!(ckpt.numbers().len(), 2, "the newest two are kept");
    let names: Vec<String> = std::fs::read_dir(ckpt.path())
        .expect("read")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names.len(), 4, "two manifests, two state files: {names:?}");

    let b = start(&dir, 2).await;
    assert_eq!(
        b.recovery().replayed_events,
        0,
        "the shutdown checkpoint covers the whole log"
    );
    let full = root.path().join("full");
    copy_dir(&dir, &full, false);
    let c = start(&full, 2).await;
    assert_same(&c, &b, "after a clean stop");
    for s in [b, c] {
        s.stop().await;
    }
}

#[test]
fn unpublished_files_are_never_loaded_and_are_cleaned_up() {
    let root = tempfile::tempdir().expect("tempdir");
    let ckpt = CheckpointDir::open(root.path()).expect("dir");
    // a crash while writing: a temporary state file, and a renamed state without a manifest
    std::fs::write(ckpt.temp_state(7), b"LPMSTATE partial").expect("write");
    std::fs::write(ckpt.path().join(store::state_name(8)), b"LPMSTATE").expect("write");
    let (found, rejected) = ckpt.newest_valid("embedded-log");
    assert!(found.is_none() && rejected.is_empty());
    assert_eq!(ckpt.next_number(), 9, "numbers are never reused");
    ckpt.retain(2);
    let left = std::fs::read_dir(ckpt.path()).expect("read").count();
    assert_eq!(left, 0, "retention removes unpublished files");
}

#[test]
fn history_is_retired_only_past_the_retention_and_never_past_the_oldest_kept_checkpoint() {
    use super::{retirable, Taken};
    use crate::position::SourcePosition;
    let at = |at_ms, log_seq| Taken {
        at_ms,
        position: SourcePosition::EmbeddedLog { log_seq },
    };
    let seq = |p: Option<&SourcePosition>| p.map(SourcePosition::log_seq);
    let h = [at(1_000, 10), at(2_000, 20), at(3_000, 30), at(4_000, 40)];
    let s = Duration::from_secs;
    // retention 0: up to the oldest of the two kept (30), not the newest (40)
    assert_eq!(seq(retirable(&h, 2, s(0), 5_000)), Some(30));
    // only checkpoints at least 2.5 s old count: the one at 2 000 ms
    assert_eq!(
        seq(retirable(&h, 2, Duration::from_millis(2_500), 5_000)),
        Some(20)
    );
    // nothing that old yet
    assert_eq!(seq(retirable(&h, 2, s(10), 5_000)), None);
    // keeping four: the oldest kept is the first
    assert_eq!(seq(retirable(&h, 4, s(0), 5_000)), Some(10));
    assert_eq!(seq(retirable(&[], 2, s(0), 5_000)), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_segments_are_not_needed_and_a_gap_is_refused_not_replayed() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("d");
    let small = |dir: &Path, workers| {
        let mut cfg = config(dir);
        cfg.workers = workers;
        cfg.source = crate::source::SourceConfig::Embedded {
            allow_log_cut: false,
            segment_bytes: 16 * 1024,
        };
        cfg.checkpoint.log_retention = Duration::ZERO;
        cfg
    };
    let a = start_ready_with(small(&dir, 2)).await;
    history(&a).await;
    let segments_before = a.checkpoints().log_segments.get();
    checkpoint(&a).await;
    tail(&a, 1).await;
    checkpoint(&a).await;
    tail(&a, 2).await;
    // the first checkpoint is the oldest kept: what it covers is retired
    assert!(
        a.checkpoints().retired_segments.get() > 0,
        "retired: {}, segments before: {segments_before}",
        a.checkpoints().retired_segments.get()
    );
    let full_copy = root.path().join("copy");
    copy_dir(&dir, &full_copy, true);
    let b = start_ready_with(small(&full_copy, 3)).await;
    assert_same(&a, &b, "restart after retirement");
    b.stop().await;

    // with every checkpoint gone, the retired history cannot be replayed: refused, loudly
    let broken = root.path().join("broken");
    copy_dir(&dir, &broken, false);
    let refused = Service::start(
        small(&broken, 2),
        Arc::new(lpm_connectors::DecodeStats::default()),
        &prometheus::Registry::new(),
        || {},
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(refused.contains("were retired"), "{refused}");
    a.stop().await;
}

/// A source as a cluster follower sees it: it only says where it stood at a tick.
struct Follows;

impl super::Checkpointable for Follows {
    fn mark(&self, _request: u64) -> Option<super::Marker> {
        panic!("a follower never asks for a checkpoint");
    }

    fn ingested(&self) -> u64 {
        77
    }

    fn origin(&self) -> String {
        "kafka b group g topics [] cluster process 1 of 2".into()
    }

    fn covered_at(&self, tick: lpm_engine::Tick) -> Option<crate::position::SourcePosition> {
        (tick >= 40).then(|| crate::position::SourcePosition::Kafka {
            log_seq: tick * 10,
            offsets: vec![crate::position::PartitionOffset {
                topic: "t".into(),
                partition: 1,
                offset: tick as i64,
            }],
        })
    }
}

/// One worker's image of `request` at `tick`, holding key `key` of the first table.
fn image(request: u64, tick: u64, worker: usize, key: i64) -> lpm_engine::checkpoint::WorkerImage {
    use lpm_engine::change::Position;
    use lpm_engine::checkpoint::{StoredEntry, TableImage, WorkerImage};
    use lpm_engine::model::Table;
    WorkerImage {
        request,
        tick,
        worker,
        workers: 2,
        tables: Table::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| TableImage {
                table: *t,
                meta: Default::default(),
                entries: if i == 0 {
                    vec![StoredEntry {
                        key,
                        position: Position {
                            coords: None,
                            seq: 5,
                        },
                        row: None,
                    }]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        open_snapshots: 0,
    }
}

/// A cluster process other than 0 never asks: it writes its share of each of process 0's
/// requests once every local worker handed its image over, at the position its own source
/// had at the request's tick, and drops a request whose images never all came.
#[test]
fn a_follower_writes_its_share_at_the_requests_tick_once_every_local_worker_sent_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, images) = std::sync::mpsc::channel();
    let metrics = Arc::new(
        super::CheckpointMetrics::register(&prometheus::Registry::new()).expect("metrics"),
    );
    let checkpointer = super::Checkpointer::start(super::Taker {
        dir: CheckpointDir::open(dir.path()).expect("dir"),
        config: super::CheckpointConfig::default(),
        source: Arc::new(Follows),
        images,
        workers: 2,
        metrics: metrics.clone(),
        history: Vec::new(),
        covered_ingested: 0,
        role: super::Role::Follower,
    })
    .expect("thread");
    // process 0 asks; asking a follower takes nothing
    assert_eq!(checkpointer.checkpoint_now(), Ok(None));
    // request 3 loses a worker's image (the engine stopped mid-way), request 4 is whole
    tx.send(image(3, 41, 0, 1)).expect("send");
    tx.send(image(4, 42, 0, 10)).expect("send");
    tx.send(image(4, 42, 1, 11)).expect("send");
    let origin = super::Checkpointable::origin(&Follows);
    let newest = || {
        CheckpointDir::open(dir.path())
            .expect("dir")
            .newest_valid_from("kafka", &origin)
            .0
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (manifest, _) = loop {
        if let Some(found) = newest() {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the follower wrote no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(manifest.tick, 42);
    assert_eq!(manifest.workers, 2);
    assert_eq!(
        manifest.entries.values().sum::<u64>(),
        2,
        "{:?}",
        manifest.entries
    );
    assert_eq!(
        manifest.position,
        crate::position::SourcePosition::Kafka {
            log_seq: 420,
            offsets: vec![crate::position::PartitionOffset {
                topic: "t".into(),
                partition: 1,
                offset: 42,
            }],
        }
    );
    assert_eq!(manifest.ingest_seq, 77);
    assert_eq!(metrics.last_tick.get(), 42);
    // a request whose tick the source no longer knows is not written with a guessed position
    tx.send(image(5, 7, 0, 20)).expect("send");
    tx.send(image(5, 7, 1, 21)).expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while metrics.failed.get() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "request 5 was neither written nor failed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    checkpointer.stop();
    assert_eq!(newest().map(|(m, _)| m.tick), Some(42));
}
