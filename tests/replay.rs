//! `lpm replay` on hand-built dumps.

use serde_json::json;

use crate::support::*;

/// A dump exercising snapshot markers, PK change, flattened deletes, truncate, a duplicate and
/// a bad record.
fn tricky_dump() -> Vec<String> {
    let snap = |table: &str, off, id, after, mark: &str| {
        record(
            table,
            off,
            id,
            Some(envelope("r", Some(after), 1, 100, 0, mark)),
        )
    };
    let mut lines = vec![
        snap(
            "responsible_contacts",
            0,
            1,
            contact(1, "Ana Chávez"),
            "first",
        ),
        snap(
            "responsible_contacts",
            1,
            2,
            contact(2, "Luis Pérez"),
            "last",
        ),
    ];
    let ev = |table: &str, off, id, op, after, pos, row| {
        record(
            table,
            off,
            id,
            Some(envelope(op, after, 2, pos, row, "false")),
        )
    };
    lines.push(ev(
        "persons_lost",
        0,
        1,
        "c",
        Some(person(1, Some(10), "Female", "2024-03-07T13:43:07.55Z")),
        10,
        0,
    ));
    lines.push(ev(
        "persons_lost",
        1,
        2,
        "c",
        Some(person(2, Some(40), " male ", "2024-03-07T14:10:00Z")),
        20,
        0,
    ));
    lines.push(ev(
        "case_cases",
        0,
        10,
        "c",
        Some(case(10, 1, "open", "high", Some(1))),
        30,
        0,
    ));
    lines.push(ev(
        "case_cases",
        1,
        11,
        "c",
        Some(case(11, 2, "in_progress", "low", None)),
        30,
        1,
    ));
    lines.push(ev(
        "case_cases",
        2,
        12,
        "c",
        Some(case(12, 2, "found_alive", "medium", Some(2))),
        30,
        2,
    ));
    // re-delivery of person 1 (same coordinates)
    lines.push(ev(
        "persons_lost",
        2,
        1,
        "c",
        Some(person(1, Some(10), "Female", "2024-03-07T13:43:07.55Z")),
        10,
        0,
    ));
    // primary-key change 2 -> 3: delete + tombstone + create at the same coordinates
    lines.push(ev("persons_lost", 3, 2, "d", None, 40, 0));
    lines.push(record("persons_lost", 4, 2, None));
    lines.push(ev(
        "persons_lost",
        5,
        3,
        "c",
        Some(person(3, Some(40), "male", "2024-03-07T14:10:00Z")),
        40,
        0,
    ));
    // flattened actions (rewrite mode): one created, then deleted; another kept
    let action = |id| {
        json!({"id": id, "case_id": 10, "action_type": "note", "notes": "ok", "responsible_id": 1,
                             "responsible_name": "Ana Chávez", "created_at": "2024-03-07T15:00:00Z", "__op": "c", "__deleted": "false"})
    };
    lines.push(record("case_actions", 0, 100, Some(action(100))));
    lines.push(record("case_actions", 1, 101, Some(action(101))));
    let mut gone = action(100);
    gone["__deleted"] = json!("true");
    gone["__op"] = json!("d");
    lines.push(record("case_actions", 2, 100, Some(gone)));
    // history row, then the table is truncated
    let hist = json!({"id": 7, "case_id": 10, "responsible_id": 1, "assigned_at": "2024-03-07T11:00:00Z", "unassigned_at": null});
    lines.push(ev("case_responsible_history", 0, 7, "c", Some(hist), 50, 0));
    let mut trunc = envelope("t", None, 2, 60, 0, "false");
    trunc.as_object_mut().expect("object").remove("after");
    lines.push(
        record("case_responsible_history", 1, 0, Some(trunc))
            .replace("\"key\":\"{\\\"id\\\":0}\"", "\"key\":null"),
    );
    // undecodable: a NOT NULL column missing (MINIMAL row image) and a line that is not JSON
    let mut partial = person(4, Some(5), "female", "2024-03-07T16:00:00Z");
    partial.as_object_mut().expect("object").remove("full_name");
    lines.push(ev("persons_lost", 6, 4, "c", Some(partial), 70, 0));
    lines.push("{not json".to_string());
    lines
}

#[test]
fn tricky_dump_gives_exact_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &tricky_dump());
    let dead = dir.path().join("dead.jsonl");
    let (v, stderr) = replay(&[
        dump.to_str().expect("path"),
        "--dead-letters",
        dead.to_str().expect("path"),
    ]);

    assert_eq!(
        v["kpi"]["total_reports"], 2,
        "persons 1 and 3 (2 was re-keyed, 4 rejected)"
    );
    assert_eq!(v["age_group"]["0-11"], 1);
    assert_eq!(v["age_group"]["30-44"], 1);
    assert_eq!(v["gender"]["female"], 1);
    assert_eq!(v["gender"]["male"], 1);
    assert_eq!(v["kpi"]["open_cases"], 2);
    assert_eq!(v["kpi"]["closed_cases"], 1);
    assert_eq!(v["kpi"]["found_alive"], 1);
    assert_eq!(v["kpi"]["unassigned_open_cases"], 1);
    assert_eq!(v["kpi"]["open_minor_cases"], 1);
    assert_eq!(
        v["kpi"]["cases_without_person"], 2,
        "cases 11 and 12 point at the old key 2"
    );
    assert_eq!(v["kpi"]["actions_total"], 1);
    assert_eq!(v["kpi"]["mean_hours_to_close"], 2.5);
    assert_eq!(v["row_counts"]["case_responsible_history"], 0, "truncated");
    assert_eq!(
        v["open_by_priority"],
        json!({"low": 1, "medium": 0, "high": 1, "critical": 0})
    );
    assert_eq!(
        v["responsible_load"],
        json!([{"id": 1, "full_name": "Ana Chávez", "agency": "ECU 911", "open_cases": 1},
               {"id": 2, "full_name": "Luis Pérez", "agency": "ECU 911", "open_cases": 0}])
    );
    // local hours in Guayaquil (UTC-5): 13:43Z -> 8, 14:10Z -> 9
    assert_eq!(v["hour_of_day"]["8"], 1);
    assert_eq!(v["hour_of_day"]["9"], 1);
    assert!(stderr.contains("duplicates 1"), "{stderr}");
    assert!(stderr.contains("decode errors 2"), "{stderr}");

    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter JSON"))
        .collect();
    let reasons: Vec<_> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(reasons, vec!["null_in_not_null", "bad_record"]);
    assert!(letters[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("full_name"));
    assert_eq!(
        letters[1]["record"], "{not json",
        "the record is kept verbatim"
    );
}

#[test]
fn any_worker_count_gives_identical_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &tricky_dump());
    let p = dump.to_str().expect("path");
    let (one, _) = replay(&[p, "--workers", "1", "--tick-records", "3"]);
    let (two, _) = replay(&[p, "--workers", "2", "--tick-records", "3"]);
    let (three, _) = replay(&[p, "--workers", "3", "--tick-records", "1000"]);
    assert_eq!(one, two);
    assert_eq!(one, three);
}

#[test]
fn resnapshot_sweeps_rows_deleted_while_the_connector_was_down() {
    let snap = |off, id, file, pos, mark: &str| snapshot_person(off, id, 30, file, pos, mark);
    let lines = vec![
        snap(0, 1, 1, 100, "first"),
        snap(1, 2, 1, 100, "true"),
        snap(2, 3, 1, 100, "last"),
        // streamed after the first snapshot: person 5 is new
        record(
            "persons_lost",
            3,
            5,
            Some(envelope(
                "c",
                Some(person(5, Some(30), "male", "2024-03-08T10:00:00Z")),
                1,
                500,
                0,
                "false",
            )),
        ),
        // connector restarts without offsets: a new snapshot that no longer sees 2 (deleted meanwhile)
        snap(4, 1, 3, 40, "first"),
        snap(5, 3, 3, 40, "true"),
        snap(6, 5, 3, 40, "last"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &lines);
    let (v, stderr) = replay(&[dump.to_str().expect("path"), "--tick-records", "2"]);
    assert_eq!(v["kpi"]["total_reports"], 3, "person 2 swept");
    assert!(stderr.contains("swept 1"), "{stderr}");
}

/// A re-snapshot whose first table has a single row: that row is marked `first` (the
/// connector's rule puts `first` before `last_in_data_collection`), so the table never sees its
/// own close marker. The snapshot's `last` record must close it, on every worker, so the rows
/// deleted while the connector was down are swept there too.
#[test]
fn the_last_record_closes_a_first_table_whose_only_row_is_marked_first() {
    let snap = |table: &str, off, id, after, mark: &str| {
        record(
            table,
            off,
            id,
            Some(envelope("r", Some(after), 3, 40, 0, mark)),
        )
    };
    let streamed = |table: &str, off, id, after, pos| {
        record(
            table,
            off,
            id,
            Some(envelope("c", Some(after), 1, pos, 0, "false")),
        )
    };
    let mut lines = Vec::new();
    for id in 1..=6 {
        let at = format!("2024-03-07T1{id}:00:00Z");
        lines.push(streamed(
            "persons_lost",
            id as u64,
            id,
            person(id, Some(30), "female", &at),
            100 * id as u64,
        ));
    }
    lines.push(streamed(
        "responsible_contacts",
        0,
        1,
        contact(1, "Ana Chávez"),
        900,
    ));
    lines.push(streamed(
        "responsible_contacts",
        1,
        2,
        contact(2, "Luis Pérez"),
        910,
    ));
    // the connector restarts without offsets; persons 2..6 and contact 2 were deleted meanwhile
    lines.push(snap(
        "persons_lost",
        7,
        1,
        person(1, Some(30), "female", "2024-03-07T11:00:00Z"),
        "first",
    ));
    lines.push(snap(
        "responsible_contacts",
        2,
        1,
        contact(1, "Ana Chávez"),
        "first_in_data_collection",
    ));
    lines.push(snap(
        "responsible_contacts",
        3,
        3,
        contact(3, "Rosa Mena"),
        "last",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &lines);
    for workers in ["1", "2", "3"] {
        let args = [
            dump.to_str().expect("path"),
            "--tick-records",
            "2",
            "--workers",
            workers,
        ];
        let (v, stderr) = replay(&args);
        assert_eq!(
            v["kpi"]["total_reports"], 1,
            "{workers} workers: persons 2-6 swept; {stderr}"
        );
        assert!(stderr.contains("swept 6"), "{workers} workers: {stderr}");
    }
}

#[test]
fn gzip_stdin_and_directories_read_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("changelog.jsonl");
    write_dump(&dump, &tricky_dump());
    let (plain, _) = replay(&[dump.to_str().expect("path")]);
    let (from_dir, _) = replay(&[dir.path().to_str().expect("path")]);
    assert_eq!(plain, from_dir);
    let status = std::process::Command::new("gzip")
        .args(["-k", dump.to_str().expect("path")])
        .status()
        .expect("gzip runs");
    assert!(status.success());
    let (gz, _) = replay(&[dir
        .path()
        .join("changelog.jsonl.gz")
        .to_str()
        .expect("path")]);
    assert_eq!(plain, gz);
    let bytes = std::fs::read(&dump).expect("dump");
    let out = lpm(&["replay", "-", "--no-progress"], Some(&bytes));
    assert!(out.status.success());
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plain, from_stdin);
}

#[test]
fn rows_dir_holds_the_final_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &tricky_dump());
    let rows = dir.path().join("rows");
    replay(&[
        dump.to_str().expect("path"),
        "--rows",
        rows.to_str().expect("path"),
    ]);
    let persons = std::fs::read_to_string(rows.join("persons_lost.jsonl")).expect("persons");
    let persons: Vec<serde_json::Value> = persons
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(
        persons.iter().map(|p| p["id"].as_i64()).collect::<Vec<_>>(),
        vec![Some(1), Some(3)]
    );
    assert_eq!(persons[0]["latitude"], "-0.180653");
    assert_eq!(persons[0]["reported_at"], "2024-03-07T13:43:07.550Z");
    assert_eq!(persons[0]["description"], "abrigo \"rojo\"\nlentes");
    let history =
        std::fs::read_to_string(rows.join("case_responsible_history.jsonl")).expect("history");
    assert!(history.is_empty());
}

#[test]
fn bad_arguments_give_readable_errors() {
    let out = lpm(
        &["replay", "/nonexistent/dump.jsonl", "--no-progress"],
        None,
    );
    // a run that failed: exit status 1
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/dump.jsonl"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &tricky_dump());
    let out = lpm(
        &[
            "replay",
            dump.to_str().expect("path"),
            "--tz",
            "Mars/Olympus",
        ],
        None,
    );
    // a bad flag value: a usage error, exit status 2, naming the flag and the value
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'Mars/Olympus'") && stderr.contains("--tz") && stderr.contains("IANA"),
        "{stderr}"
    );
}

#[test]
fn dropping_free_text_for_views_changes_no_view() {
    // without --rows / --case-model, replay keeps only the columns views read
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.jsonl");
    write_dump(&dump, &tricky_dump());
    let p = dump.to_str().expect("path");
    let (lean, _) = replay(&[p]);
    let rows = dir.path().join("rows");
    let (full, _) = replay(&[p, "--rows", rows.to_str().expect("path")]);
    let (model, _) = replay(&[p, "--case-model"]);
    assert_eq!(lean, full);
    assert_eq!(lean, model);
}

/// A generated dump gzipped into `dir`: its path and its record count.
fn gzipped_dump(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let opts = lpm_testkit::gen::GenOptions {
        persons: 300,
        ..Default::default()
    };
    let plain = dir.join("changelog.jsonl");
    let truth = {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&plain).expect("create"));
        lpm_testkit::gen::generate(&opts, &mut f).expect("generate")
    };
    let status = std::process::Command::new("gzip")
        .arg(&plain)
        .status()
        .expect("gzip runs");
    assert!(status.success());
    (dir.join("changelog.jsonl.gz"), truth.records)
}

/// `lpm replay` on a dump the reader cannot finish: exit 1, no views, the read error on stderr.
fn assert_read_failure(path: &std::path::Path, error: &str) {
    let out = lpm(
        &["replay", path.to_str().expect("path"), "--no-progress"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no views from a partial input");
    assert!(stderr.contains(error), "{stderr}");
    assert!(stderr.contains("--allow-truncated"), "{stderr}");
}

/// The record count in `lpm replay: input truncated: read N records`.
fn records_read(stderr: &str) -> u64 {
    let tail = stderr
        .split("input truncated: read ")
        .nth(1)
        .unwrap_or_else(|| panic!("no truncation note: {stderr}"));
    tail.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count: {stderr}"))
}

#[test]
fn truncated_gzip_fails_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gz, records) = gzipped_dump(dir.path());
    let bytes = std::fs::read(&gz).expect("gz");
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert_read_failure(&cut, "incomplete deflate stream");

    let (views, stderr) = replay(&[cut.to_str().expect("path"), "--allow-truncated"]);
    let read = records_read(&stderr);
    assert!(read > 0 && read < records, "{read} of {records}: {stderr}");
    assert!(stderr.contains("incomplete deflate stream"), "{stderr}");
    assert!(
        stderr.starts_with(&format!("lpm replay: {read} records")),
        "{stderr}"
    );
    assert!(views["kpi"]["total_reports"].as_u64().unwrap_or(0) > 0);

    // the whole file: no truncation note, every record read
    let (_, stderr) = replay(&[gz.to_str().expect("path"), "--allow-truncated"]);
    assert!(!stderr.contains("truncated:"), "{stderr}");
    assert!(
        stderr.starts_with(&format!("lpm replay: {records} records")),
        "{stderr}"
    );
}

#[test]
fn corrupt_gzip_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gz, _) = gzipped_dump(dir.path());
    let mut bytes = std::fs::read(&gz).expect("gz");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(&gz, &bytes).expect("write");
    assert_read_failure(&gz, "corrupt");
}

#[test]
fn an_io_error_fails() {
    // a directory where the dump should be: it opens, and every read fails (EISDIR)
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("changelog.jsonl")).expect("mkdir");
    assert_read_failure(dir.path(), "Is a directory");
}
