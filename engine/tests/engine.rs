//! The engine through its public API: a vector feed, 1 and 2 workers, views, case reads and
//! subscriptions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lpm_engine::change::{ChangeKind, Coords, Position, RowChange, SnapshotMark};
use lpm_engine::model::{
    Action, Assignment, Case, Person, Priority, Responsible, Row, Sighting, Status, Table,
};
use lpm_engine::store::Update;
use lpm_engine::{Change, Engine, EngineConfig, Feed, FeedItem};

/// Hands out ticks of changes, round-robin over whichever worker asks.
struct VecFeed(Mutex<std::vec::IntoIter<(u64, Vec<Change>)>>);

impl Feed for VecFeed {
    fn next(&self, _worker: usize) -> FeedItem {
        match self.0.lock().expect("feed").next() {
            Some((tick, changes)) => FeedItem::Batch { tick, changes },
            None => FeedItem::End,
        }
    }
}

/// A feed that gives nothing until its gate is released.
struct Gated(Arc<Mutex<()>>, VecFeed);

impl Feed for Gated {
    fn next(&self, worker: usize) -> FeedItem {
        drop(self.0.lock().expect("gate"));
        self.1.next(worker)
    }
}

fn at(seq: u64) -> Position {
    Position {
        coords: Some(Coords {
            file: 1,
            pos: seq * 10,
            row: 0,
            streamed: true,
        }),
        seq,
    }
}

fn upsert(row: Row, seq: u64) -> Change {
    Change::Row(RowChange {
        table: row.table(),
        key: row.key(),
        kind: ChangeKind::Upsert(row),
        position: at(seq),
        snapshot: SnapshotMark::Streamed,
    })
}

fn delete(table: Table, key: i64, seq: u64) -> Change {
    Change::Row(RowChange {
        table,
        key,
        kind: ChangeKind::Delete,
        position: at(seq),
        snapshot: SnapshotMark::Streamed,
    })
}

fn person(id: i64, age: Option<i64>) -> Row {
    Row::Person(Arc::new(Person {
        id,
        full_name: format!("Persona {id}"),
        age,
        gender: "female".into(),
        last_seen_at: 0,
        reported_at: 1_709_820_000_000,
        last_seen_place: "Quito".into(),
        version: 1,
        ..Default::default()
    }))
}

fn case(id: i64, person_id: i64, status: Status, responsible_id: Option<i64>) -> Row {
    Row::Case(Arc::new(Case {
        id,
        person_id,
        status,
        priority: Priority::High,
        responsible_id,
        opened_at: 0,
        closed_at: None,
        version: 1,
        public: false,
        public_id: None,
    }))
}

fn contact(id: i64) -> Row {
    Row::Responsible(Arc::new(Responsible {
        id,
        full_name: format!("Agente {id}"),
        agency: "ECU 911".into(),
        phone: None,
        email: None,
        active: true,
        version: 1,
    }))
}

fn action(id: i64, case_id: i64, created_at: i64) -> Row {
    Row::Action(Arc::new(Action {
        id,
        case_id,
        action_type: "note".into(),
        notes: None,
        responsible_id: None,
        responsible_name: None,
        created_at,
    }))
}

fn sighting(id: i64, case_id: i64, seen_at: i64, version: i64) -> Row {
    Row::Sighting(Arc::new(Sighting {
        id,
        case_id,
        seen_at,
        place: format!("Lugar {id}"),
        version,
        ..Sighting::default()
    }))
}

fn assignment(id: i64, case_id: i64, responsible_id: i64) -> Row {
    Row::Assignment(Arc::new(Assignment {
        id,
        case_id,
        responsible_id,
        assigned_at: id,
        unassigned_at: None,
    }))
}

fn ticks() -> Vec<(u64, Vec<Change>)> {
    vec![
        (
            0,
            vec![
                upsert(contact(1), 1),
                upsert(contact(2), 2),
                upsert(person(1, Some(9)), 3),
                upsert(case(10, 1, Status::Open, Some(1)), 4),
            ],
        ),
        (
            1,
            vec![
                upsert(action(100, 10, 5), 5),
                upsert(action(101, 10, 3), 6),
                upsert(assignment(7, 10, 1), 7),
                upsert(sighting(200, 10, 9_000, 1), 20),
                upsert(sighting(202, 12, 1_000, 1), 21),
            ],
        ),
        (
            2,
            vec![
                upsert(case(10, 1, Status::InProgress, Some(2)), 8),
                upsert(assignment(8, 10, 2), 9),
                delete(Table::CaseActions, 101, 10),
                upsert(sighting(201, 10, 2_000, 1), 22),
                upsert(sighting(200, 10, 9_000, 2), 23),
            ],
        ),
        (3, vec![upsert(case(11, 99, Status::Open, None), 11)]),
    ]
}

fn start(workers: usize) -> Engine {
    let config = EngineConfig {
        workers,
        case_model: true,
        ..EngineConfig::default()
    };
    Engine::start(config, Arc::new(VecFeed(Mutex::new(ticks().into_iter()))))
        .expect("engine starts")
}

#[test]
fn case_reads_join_person_responsible_actions_and_history() {
    for workers in [1, 2] {
        let engine = start(workers);
        let handle = engine.handle();
        assert!(handle.store().wait_finished(Duration::from_secs(30)));
        let detail = handle
            .case(10, Duration::from_secs(10))
            .expect("read")
            .expect("case 10 exists");
        assert_eq!(detail.record.case.status, Status::InProgress);
        assert_eq!(detail.record.person.as_ref().map(|p| p.id), Some(1));
        assert_eq!(
            detail.record.responsible.as_ref().map(|r| r.id),
            Some(2),
            "current responsible"
        );
        assert_eq!(
            detail.actions.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![100],
            "101 deleted"
        );
        assert_eq!(
            detail.history.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![7, 8]
        );
        // newest first by seen_at, each at its last version; case 12's sighting has no case
        assert_eq!(
            detail
                .sightings
                .iter()
                .map(|s| (s.id, s.version))
                .collect::<Vec<_>>(),
            vec![(200, 2), (201, 1)]
        );
        let orphan = handle
            .case(11, Duration::from_secs(10))
            .expect("read")
            .expect("case 11 exists");
        assert!(orphan.record.person.is_none() && orphan.record.responsible.is_none());
        assert!(handle
            .case(12, Duration::from_secs(10))
            .expect("read")
            .is_none());
        // every case with its timeline at one tick equals the one-case reads
        let (tick, mut all) = handle
            .case_details(Arc::new(|_| true), Duration::from_secs(10))
            .expect("details read");
        all.sort_by_key(|d| d.record.case.id);
        assert_eq!(all.len(), 2, "workers {workers}");
        assert!(all.iter().all(|d| d.tick == tick));
        assert_eq!(all[0], detail);
        assert_eq!(all[1], orphan);
        let (_, open) = handle
            .case_details(
                Arc::new(|r| r.case.responsible_id.is_none()),
                Duration::from_secs(10),
            )
            .expect("filtered read");
        assert_eq!(
            open.iter().map(|d| d.record.case.id).collect::<Vec<_>>(),
            vec![11]
        );
        // the list's sighting counts: a corrected sighting counts once, an orphan nowhere
        let (_, mut listed) = handle
            .listed(Arc::new(|_| true), Duration::from_secs(10))
            .expect("listed read");
        listed.sort_by_key(|l| l.record.case.id);
        assert_eq!(
            listed
                .iter()
                .map(|l| (l.record.case.id, l.sightings))
                .collect::<Vec<_>>(),
            vec![(10, 2), (11, 0)],
            "workers {workers}"
        );
        assert_eq!(listed[0].record, detail.record);
        let (_, views) = handle.store().read();
        assert!(!views.row_counts.contains_key("case_sightings"));
        assert_eq!(views.kpi.actions_total, 1);
        assert_eq!(views.kpi.open_minor_cases, 1, "workers {workers}");
        assert_eq!(views.kpi.cases_without_person, 1);
        assert_eq!(
            views
                .responsible_load
                .iter()
                .map(|l| (l.id, l.open_cases))
                .collect::<Vec<_>>(),
            vec![(1, 0), (2, 1)]
        );
        drop(handle);
        let summary = engine.join().expect("joins");
        assert_eq!(summary.upsert.applied, 15);
    }
}

#[test]
fn subscribers_get_one_consolidated_diff_per_tick() {
    // a feed that waits so the subscription starts before the first tick
    let gate = Arc::new(Mutex::new(()));
    let hold = gate.lock().expect("gate");
    let feed = Gated(gate.clone(), VecFeed(Mutex::new(ticks().into_iter())));
    let engine = Engine::start(
        EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        Arc::new(feed),
    )
    .expect("starts");
    let handle = engine.handle();
    let sub = handle.store().subscribe(64);
    assert!(sub.snapshot.is_empty());
    drop(hold);
    let mut ticks_seen = vec![];
    while let Some(u) = sub.recv_timeout(Duration::from_secs(10)) {
        match u {
            Update::Diff(d) => {
                eprintln!("tick {} {:?}", d.tick, d.diffs);
                assert!(d.diffs.iter().all(|(_, n)| *n != 0), "consolidated");
                ticks_seen.push(d.tick);
            }
            Update::Resync { .. } => panic!("no resync with a large queue"),
        }
        if ticks_seen.last() == Some(&3) {
            break;
        }
    }
    assert_eq!(ticks_seen, vec![0, 1, 2, 3]);
    drop(handle);
    engine.join().expect("joins");
}

#[test]
fn a_slow_subscriber_is_resynchronised_not_buffered() {
    let gate = Arc::new(Mutex::new(()));
    let hold = gate.lock().expect("gate");
    let feed = Gated(gate.clone(), VecFeed(Mutex::new(ticks().into_iter())));
    let engine = Engine::start(
        EngineConfig {
            workers: 1,
            ..EngineConfig::default()
        },
        Arc::new(feed),
    )
    .expect("starts");
    let handle = engine.handle();
    let sub = handle.store().subscribe(1);
    drop(hold);
    assert!(handle.store().wait_finished(Duration::from_secs(30)));
    // four ticks with changes into a queue of one: the queue holds one resync at the last tick
    let first = sub.recv_timeout(Duration::from_secs(1)).expect("an update");
    assert!(
        sub.recv_timeout(Duration::from_millis(100)).is_none(),
        "bounded to one message"
    );
    let (tick, views) = handle.store().read();
    match first {
        Update::Resync { tick: t, rows, .. } => {
            assert_eq!(Some(t), tick);
            assert_eq!(lpm_engine::Views::from_rows(rows.iter()), views);
        }
        Update::Diff(d) => panic!("expected a resync, got the diff of tick {}", d.tick),
    }
    drop(handle);
    engine.join().expect("joins");
}

/// `row` (a person or a responsible) with another name.
fn renamed(row: Row, name: &str) -> Row {
    match row {
        Row::Person(p) => Row::Person(Arc::new(Person {
            full_name: name.into(),
            ..(*p).clone()
        })),
        Row::Responsible(r) => Row::Responsible(Arc::new(Responsible {
            full_name: name.into(),
            ..(*r).clone()
        })),
        other => other,
    }
}

/// Each tick's update names exactly the cases whose record (case, person, responsible,
/// actions, history, sightings) changed at that tick: what the WebSocket `cases` topic announces in every
/// source mode. Duplicates, replays and changes undone within the tick announce nothing.
#[test]
fn each_tick_carries_exactly_the_cases_whose_record_changed() {
    let ticks = vec![
        (
            0,
            vec![
                upsert(contact(5), 1),
                upsert(person(1, Some(9)), 2),
                upsert(case(10, 1, Status::Open, Some(5)), 3),
                upsert(person(2, Some(30)), 4),
            ],
        ),
        // the person's name is in no view: the update comes for the case alone
        (1, vec![upsert(renamed(person(1, Some(9)), "Lucía"), 5)]),
        (
            2,
            vec![
                upsert(renamed(person(1, Some(9)), "Lucía"), 5),
                upsert(person(3, Some(40)), 6),
                upsert(case(11, 3, Status::Open, None), 7),
            ],
        ),
        (
            3,
            vec![
                upsert(action(100, 10, 5), 8),
                upsert(case(11, 3, Status::Open, None), 7),
                upsert(case(11, 3, Status::Closed, None), 6),
            ],
        ),
        (4, vec![delete(Table::CaseCases, 11, 9)]),
        (5, vec![upsert(renamed(contact(5), "Agente Cinco"), 10)]),
        (
            6,
            vec![
                upsert(renamed(contact(5), "Agente Cinco"), 10),
                upsert(person(2, Some(50)), 11),
            ],
        ),
        (7, vec![upsert(assignment(7, 10, 5), 12)]),
        (
            8,
            vec![
                upsert(renamed(person(1, Some(9)), "Otra"), 13),
                upsert(renamed(person(1, Some(9)), "Lucía"), 14),
                upsert(person(2, Some(60)), 15),
            ],
        ),
        // a sighting names its case (so open case pages reload); its duplicate names nothing
        (9, vec![upsert(sighting(300, 10, 1_000, 1), 16)]),
        (
            10,
            vec![
                upsert(sighting(300, 10, 1_000, 1), 16),
                upsert(person(2, Some(5)), 17),
            ],
        ),
    ];
    let expected: Vec<(u64, Vec<i64>)> = vec![
        (0, vec![10]),
        (1, vec![10]),
        (2, vec![11]),
        (3, vec![10]),
        (4, vec![11]),
        (5, vec![10]),
        (6, vec![]),
        (7, vec![10]),
        (8, vec![]),
        (9, vec![10]),
        (10, vec![]),
    ];
    for workers in [1, 2] {
        let gate = Arc::new(Mutex::new(()));
        let hold = gate.lock().expect("gate");
        let feed = Gated(gate.clone(), VecFeed(Mutex::new(ticks.clone().into_iter())));
        let engine = Engine::start(
            EngineConfig {
                workers,
                case_model: true,
                ..EngineConfig::default()
            },
            Arc::new(feed),
        )
        .expect("starts");
        let handle = engine.handle();
        let sub = handle.store().subscribe(64);
        drop(hold);
        let mut seen = Vec::new();
        while let Some(u) = sub.recv_timeout(Duration::from_secs(10)) {
            match u {
                Update::Diff(d) => seen.push((d.tick, d.cases)),
                Update::Resync { .. } => panic!("no resync with a large queue"),
            }
            if seen.last().is_some_and(|(t, _)| *t == 10) {
                break;
            }
        }
        assert_eq!(seen, expected, "workers {workers}");
        drop(handle);
        engine.join().expect("joins");
    }
}
