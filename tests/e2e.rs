//! End-to-end tests of the `lpm` binary (one test binary, ripgrep style).
//!
//! Each module builds a small topic dump by hand (the shapes of `connectors/tests/fixtures`
//! applied to lpm's tables) or with our own generator, runs `lpm replay`, and checks the JSON.

mod support;

// hand-built dumps: truncate, PK change, flattened deletes, re-snapshots, bad records
mod replay;
// our generator + reference model across encodings, orders, duplicates and DST zones
mod generated;
// `lpm replay` as a timely cluster of 2 and 3 processes: same output, mismatch, kill -9
mod cluster;
// `lpm serve` over real sockets: WebSocket diffs = REST = replay = oracle, and kill -9
mod serve;
// the hardening review's findings: data-dir lock, corrupt log, idle connections, WebSockets
mod hardening;
// `lpm capture` against a real MariaDB: workload = SELECT = replay = oracle, kill -9, parity
mod capture;
// checkpoints of `lpm serve --capture`: restarts = a fresh snapshot, kill -9, corrupt, purged
mod checkpoints;
// `lpm serve --kafka` against a broker process (tansu): kill -9, commits vs applied, oracle
mod kafka;
// `lpm serve --kafka` as a 2-process cluster: shares, commits, case reads, fail-stop, restart
mod kafka_cluster;
// docker-compose.yml, Dockerfile, deploy/ and Grafana provisioning, checked by parsing
mod compose;
// the Dockerfile's builder stage checked by `cargo check` on exactly what it copies
mod dockerfile;
// bundled Grafana dashboards and Prometheus rules against `lpm serve --demo` and promtool
mod dashboards;
// alert delivery: real Prometheus -> Alertmanager -> webhook, and lpm's /runbook page
mod alerting;
// MySQL as the system of record: `lpm migrate`, `lpm serve --capture --mysql`, MySQL stopped
mod mysql_sor;
// `lpm serve --auto-assign`: 200 concurrent filings under the cap, the rule's order, expired
// sessions, retries; embedded and MySQL
mod auto_assign;
// notifications to a misbehaving local receiver: exactly once after dedup, across kill -9
mod notify;
// `lpm serve --sink`: agg_* tables = views, kill -9 and MySQL outages lose and repeat nothing
mod sink;
// the WebSocket `cases` topic under `--capture` and `--kafka` (notices come from the engine)
mod case_notices;
// the shape of the code: no two modules of a crate import each other
mod layering;
// PDF reports read back with poppler: case report rows and words, analytics totals = views
mod reports;
// the command line's conventions: --demo's data dir, exit statuses, --version, completions, man
mod cli;
// `lpm serve`'s configuration file: flags > environment > file > defaults, and its errors
mod config_file;
// docs/configuration.md against every command's --help
mod docs_flags;
// the README's curl tour, extracted and run against `lpm serve --demo`
mod readme_tour;
