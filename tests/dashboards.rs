//! The bundled Grafana dashboards and Prometheus rules, checked against a running lpm.
//!
//! Without a server: every dashboard and provisioning file parses, uids are unique, every
//! panel, target and variable names a provisioned data source of the right type, panels have
//! ids, a grid position and a description; every alert rule has a summary, a description and a
//! runbook link (`{{ $externalLabels.runbook_base_url }}#anchor`) to a real section of
//! `docs/runbook.md`; `promtool check config/rules` and
//! `promtool test rules` pass.
//!
//! Against `lpm serve --demo` (read with the read-only token Grafana gets): every Infinity
//! target and variable query is sent as Infinity would send it (time range and variables
//! substituted, with the defaults and again with one concrete value per variable) and must
//! answer rows with every column the panel declares, of the declared type (a Geomap panel's
//! rows must also carry its location fields as latitudes and longitudes); every simpod
//! target must be listed by `/grafana/metrics` and `/grafana/query` must answer frames that
//! Grafana's `toDataFrame` accepts; every metric named by a PromQL expression (dashboards and
//! rules) must be exposed by `/metrics`; `promtool check metrics` must accept the scrape.
//!
//! Finally a real Prometheus server (not a system service: a child process on a free loopback
//! port with a temp config and storage) scrapes a demo server every second and must answer
//! the ingest rate and the freshness histogram.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package (`scripts/test.sh`
//! installs it); when they are missing these tests fail and say so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::compose::{read, root, yaml};
use crate::serve::{wait_until, Auth, Http, Server};

const INFINITY: &str = "yesoreyeram-infinity-datasource";
const SIMPOD: &str = "simpod-json-datasource";
const PROMETHEUS: &str = "prometheus";
const RULES: &str = "deploy/prometheus/rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/rules.test.yml";
const PROM_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RUNBOOK: &str = "docs/runbook.md";
/// How every rule starts its runbook link: the external label set in `prometheus.yml`.
const RUNBOOK_BASE: &str = "{{ $externalLabels.runbook_base_url }}";
/// Series Prometheus makes itself for every target; not on `/metrics`.
const PROMETHEUS_MADE: [&str; 1] = ["up"];

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// Every dashboard JSON (what the file provider loads), by path relative to the repo.
fn dashboards() -> Vec<(String, Value)> {
    let mut paths = Vec::new();
    files_under(&root().join("dashboards"), "json", &mut paths);
    paths.sort();
    assert!(
        paths.len() >= 3,
        "expected the three dashboards, found {paths:?}"
    );
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .expect("inside the repo")
                .to_string_lossy()
                .into_owned();
            let doc: Value = serde_json::from_str(&read(&rel))
                .unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"));
            (rel, doc)
        })
        .collect()
}

/// Provisioned data sources: uid -> plugin type.
fn datasources() -> BTreeMap<String, String> {
    let mut paths = Vec::new();
    files_under(&root().join("dashboards/provisioning"), "yaml", &mut paths);
    let mut out = BTreeMap::new();
    for p in paths {
        let rel = p.strip_prefix(root()).expect("inside the repo");
        let doc = yaml(&rel.to_string_lossy());
        for ds in doc["datasources"].as_array().into_iter().flatten() {
            let uid = ds["uid"].as_str().expect("every data source has a uid");
            let kind = ds["type"].as_str().expect("every data source has a type");
            assert!(
                out.insert(uid.to_string(), kind.to_string()).is_none(),
                "duplicate data source uid {uid}"
            );
        }
    }
    out
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn variables(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// The data source a target queries: its own, else its panel's.
fn target_ds<'a>(panel: &'a Value, target: &'a Value) -> &'a Value {
    if target["datasource"].is_object() {
        &target["datasource"]
    } else {
        &panel["datasource"]
    }
}

/// `(where, datasource)` of every query in a dashboard: panel targets and query variables, with
/// the query itself.
struct Query<'a> {
    place: String,
    panel: Option<&'a Value>,
    ds_type: String,
    query: &'a Value,
}

fn queries<'a>(file: &str, dashboard: &'a Value) -> Vec<Query<'a>> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let ds = target_ds(p, t);
            out.push(Query {
                place: format!(
                    "{file} panel {} {:?} target {}",
                    p["id"], p["title"], t["refId"]
                ),
                panel: Some(p),
                ds_type: ds["type"].as_str().unwrap_or_default().to_string(),
                query: t,
            });
        }
    }
    for v in variables(dashboard) {
        if v["type"] == "query" {
            out.push(Query {
                place: format!("{file} variable {}", v["name"]),
                panel: None,
                ds_type: v["datasource"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                query: &v["query"],
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// structure

#[test]
fn dashboards_are_well_formed_and_use_provisioned_datasources() {
    let sources = datasources();
    assert_eq!(
        sources.values().collect::<BTreeSet<_>>(),
        [INFINITY, PROMETHEUS, SIMPOD]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(uids.insert(uid.to_string()), "{file}: duplicate uid {uid}");
        assert!(
            !sources.contains_key(uid),
            "{file}: uid {uid} is a data source's"
        );
        let title = d["title"].as_str().unwrap_or_default();
        assert!(titles.insert(title.to_string()), "{file}: duplicate title");
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
            "{file}: schemaVersion {}",
            d["schemaVersion"]
        );
        assert!(
            d["time"]["from"].is_string(),
            "{file}: no default time range"
        );

        let check_ds = |place: &str, ds: &Value| {
            let uid = ds["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{place}: no datasource uid in {ds}"));
            let kind = sources
                .get(uid)
                .unwrap_or_else(|| panic!("{place}: datasource uid {uid} is not provisioned"));
            assert_eq!(
                ds["type"].as_str(),
                Some(kind.as_str()),
                "{place}: type of {uid}"
            );
        };
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let place = format!("{file} panel {} {:?}", p["id"], p["title"]);
            let id = p["id"].as_u64().unwrap_or_else(|| panic!("{place}: no id"));
            assert!(ids.insert(id), "{place}: duplicate panel id");
            for k in ["x", "y", "w", "h"] {
                assert!(p["gridPos"][k].is_u64(), "{place}: gridPos.{k}");
            }
            let w = p["gridPos"]["w"].as_u64().unwrap_or(0);
            let x = p["gridPos"]["x"].as_u64().unwrap_or(0);
            assert!(x + w <= 24, "{place}: wider than the grid");
            if p["type"] == "row" {
                continue;
            }
            assert!(
                p["description"].as_str().is_some_and(|s| s.len() > 10),
                "{place}: no description"
            );
            check_ds(&place, &p["datasource"]);
            let targets = p["targets"].as_array().map_or(&[][..], Vec::as_slice);
            assert!(!targets.is_empty(), "{place}: no targets");
            let mut refs = BTreeSet::new();
            for t in targets {
                assert!(
                    refs.insert(t["refId"].to_string()),
                    "{place}: duplicate refId"
                );
                check_ds(&place, target_ds(p, t));
            }
        }
        for v in variables(&d) {
            let place = format!("{file} variable {}", v["name"]);
            if v["type"] == "query" || v["type"] == "adhoc" {
                check_ds(&place, &v["datasource"]);
            }
        }
    }
}

/// GitHub's heading anchors, as `/runbook` gives them ids.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| lpm_api::web::runbook::anchor(h.trim_start_matches('#')))
        .collect()
}

fn alert_rules() -> Vec<Value> {
    let doc = yaml(RULES);
    let rules: Vec<Value> = doc["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!rules.is_empty(), "{RULES} has no rules");
    rules
}

#[test]
fn every_alert_has_a_summary_a_description_and_a_runbook_section() {
    let runbook = read(RUNBOOK);
    let sections = anchors(&runbook);
    let alerts_md = read("dashboards/README.md");
    for rule in alert_rules() {
        let name = rule["alert"].as_str().expect("alerting rules only");
        for k in ["summary", "description"] {
            assert!(
                rule["annotations"][k]
                    .as_str()
                    .is_some_and(|s| s.len() > 10),
                "{name}: no {k}"
            );
        }
        let link = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no runbook_url"));
        let anchor = link
            .strip_prefix(&format!("{RUNBOOK_BASE}#"))
            .unwrap_or_else(|| panic!("{name}: runbook_url {link} is not {RUNBOOK_BASE}#..."));
        assert_eq!(anchor, name.to_lowercase(), "{name}: anchor");
        assert!(
            sections.contains(anchor),
            "{name}: {RUNBOOK} has no section #{anchor}"
        );
        assert!(
            rule["labels"]["severity"].is_string(),
            "{name}: no severity"
        );
        assert!(
            alerts_md.contains(&format!("`{name}`")),
            "{name} is missing from the alert list in dashboards/README.md"
        );
    }
}

pub(crate) fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "\n{name} is not installed: it comes with Debian's `prometheus` or \
             `prometheus-alertmanager` package (scripts/test.sh installs both)"
        )
    })
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(tool("promtool"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write promtool's stdin");
    drop(input);
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_accepts_the_config_the_rules_and_their_tests() {
    for args in [
        &["check", "config", PROM_CONFIG][..],
        &["check", "rules", RULES],
        &["test", "rules", RULE_TESTS],
    ] {
        let (ok, out) = promtool(args, None);
        assert!(ok, "promtool {}:\n{out}", args.join(" "));
    }
    // every alert has a unit test
    let tests = read(RULE_TESTS);
    for rule in alert_rules() {
        let name = rule["alert"].as_str().unwrap_or_default();
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{RULE_TESTS} does not test {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PromQL metric names

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Words that are never metric names: operators and modifiers.
const PROMQL_KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
];

/// The index after the string literal opening at `open` (escapes respected).
fn skip_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut j = open + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(chars.len())
}

/// Whether the word at `at` is `by` or `without` followed by `(`: the word before it is an
/// aggregation operator (`sum by (le) (...)`).
fn next_word_is_grouping(chars: &[char], at: usize) -> bool {
    let end = (at..chars.len())
        .find(|&j| !is_ident(chars[j]))
        .unwrap_or(chars.len());
    let word: String = chars[at..end].iter().collect();
    let after = (end..chars.len())
        .find(|&j| !chars[j].is_whitespace())
        .map(|j| chars[j]);
    matches!(word.to_ascii_lowercase().as_str(), "by" | "without") && after == Some('(')
}

/// The metric names a PromQL expression selects: identifiers that are not functions or
/// aggregations (followed by `(`), keywords, label lists after `by`/`without`/`on`/
/// `ignoring`/`group_*`, label matchers (`{...}`), ranges and durations (`[...]`, after
/// `offset`), strings, numbers (`inf`/`nan` included) or Grafana variables (`$x`, `${x}`).
/// A selector without a name (`{__name__=~"..."}`) is reported as `{__name__}`.
pub(crate) fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // index after the group closing the bracket opened at `open`, strings respected
    let skip_group = |open: usize| {
        let (o, c) = (
            chars[open],
            if chars[open] == '{' {
                '}'
            } else if chars[open] == '[' {
                ']'
            } else {
                ')'
            },
        );
        let mut depth = 0;
        let mut j = open;
        while j < chars.len() {
            let ch = chars[j];
            if ch == '"' || ch == '\'' || ch == '`' {
                j = skip_string(&chars, j) - 1;
            } else if ch == o {
                depth += 1;
            } else if ch == c {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            j += 1;
        }
        j
    };
    let mut after_name = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
            after_name = false;
        } else if c == '{' {
            let end = skip_group(i);
            if !after_name
                && chars[i..end]
                    .iter()
                    .collect::<String>()
                    .contains("__name__")
            {
                out.insert("{__name__}".to_string());
            }
            i = end;
            after_name = false;
        } else if c == '[' {
            i = skip_group(i);
        } else if c == '$' {
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                i = skip_group(i);
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
            after_name = false;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                // 1e-3 / 1e+3
                if (chars[i] == 'e' || chars[i] == 'E')
                    && matches!(chars.get(i + 1), Some('-') | Some('+'))
                {
                    i += 1;
                }
                i += 1;
            }
            after_name = false;
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            let lower = word.to_ascii_lowercase();
            after_name = false;
            if PROMQL_KEYWORDS.contains(&lower.as_str()) {
                if lower == "offset" {
                    // the duration
                    i = next;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                    }
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                } else if chars.get(next) == Some(&'(') {
                    // by (...), on (...): label names
                    i = skip_group(next);
                }
            } else if chars.get(next) == Some(&'(') || next_word_is_grouping(&chars, next) {
                // a function, or an aggregation (`sum(...)`, `sum by (x) (...)`)
            } else if lower == "inf" || lower == "nan" {
                // numbers
            } else {
                out.insert(word);
                after_name = true;
            }
        } else {
            i += 1;
            after_name = false;
        }
    }
    out
}

#[test]
fn promql_names_are_extracted_robustly() {
    let names = |e: &str| -> Vec<String> { promql_metric_names(e).into_iter().collect() };
    assert_eq!(
        names(
            r#"sum by (le, route) (rate(lpm_http_request_duration_seconds_bucket{instance=~"$instance", route!="a}b"}[$__rate_interval]))"#
        ),
        ["lpm_http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names("process_resident_memory_bytes / ignoring(source) group_left(x) lpm_memory_limit_bytes > 0.9e+1"),
        ["lpm_memory_limit_bytes", "process_resident_memory_bytes"]
    );
    assert_eq!(
        names("histogram_quantile(0.99, sum without (instance) (rate(a_bucket[5m] offset -1h))) > bool Inf or on() vector(0) unless b:recorded"),
        ["a_bucket", "b:recorded"]
    );
    assert_eq!(names("topk(10, sum by(arrangement)(x[1h:5m]))"), ["x"]);
    assert_eq!(names(r#"{__name__=~"lpm_.*"}"#), ["{__name__}"]);
    assert_eq!(names("changes(up{job='lpm'}[30m]) > 2 and nan"), ["up"]);
    assert_eq!(names("${x} * 2"), Vec::<String>::new());
}

/// Metric names in a Prometheus text exposition: sample names, plus the declared families
/// (with their histogram/summary series), so a family without samples yet still counts.
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            out.insert(name.to_string());
            let suffixes: &[&str] = match kind {
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["_sum", "_count"],
                _ => &[],
            };
            out.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name: String = line.chars().take_while(|c| is_ident(*c)).collect();
            out.insert(name);
        }
    }
    out
}

/// Every PromQL expression of the dashboards and the rules, with where it is.
fn promql_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for q in queries(&file, &d) {
            if q.ds_type != PROMETHEUS {
                continue;
            }
            let expr = q.query["expr"]
                .as_str()
                .or_else(|| q.query["query"].as_str())
                .or_else(|| q.query.as_str())
                .unwrap_or_else(|| panic!("{}: no PromQL", q.place));
            // label_values(metric, label): only the first argument is PromQL
            let expr = match expr.trim().strip_prefix("label_values(") {
                Some(args) => args
                    .rsplit_once(',')
                    .map_or(args, |(selector, _label)| selector)
                    .to_string(),
                None => expr.to_string(),
            };
            out.push((q.place, expr));
        }
    }
    for rule in alert_rules() {
        out.push((
            format!("{RULES} {}", rule["alert"]),
            rule["expr"]
                .as_str()
                .expect("every rule has an expr")
                .to_string(),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Grafana's side of a query: macros and variables

/// The current value(s) of each variable; `$__all` becomes the variable's `allValue`.
type Vars = BTreeMap<String, Vec<String>>;

fn default_vars(dashboard: &Value) -> Vars {
    let mut out = Vars::new();
    for v in variables(dashboard) {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        if v["type"] == "adhoc" {
            continue;
        }
        let values: Vec<String> = match &v["current"]["value"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            Value::String(s) => vec![s.clone()],
            other => panic!("variable {name}: current value {other}"),
        };
        let values = if values.iter().any(|x| x == "$__all") {
            vec![v["allValue"]
                .as_str()
                .unwrap_or_else(|| panic!("variable {name}: All without an allValue"))
                .to_string()]
        } else {
            values
        };
        out.insert(name, values);
    }
    out
}

/// Replaces Grafana's `$name`, `${name}` and `${name:format}` (time-range macros and
/// dashboard variables) the way Grafana and Infinity do; an unknown name panics.
fn interpolate(text: &str, vars: &Vars, from: i64, to: i64) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, format, len) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
            let (n, f) = inner[..end]
                .split_once(':')
                .map_or((&inner[..end], None), |(n, f)| (n, Some(f)));
            (n, f, end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], None, end)
        };
        let value = match name {
            "__from" | "__timeFrom" => from.to_string(),
            "__to" | "__timeTo" => to.to_string(),
            "" => "$".to_string(),
            _ => {
                let values = vars
                    .get(name)
                    .unwrap_or_else(|| panic!("unknown variable ${name} in {text}"));
                match format {
                    None | Some("csv") | Some("raw") => values.join(","),
                    Some("pipe") => values.join("|"),
                    Some(f) => panic!("variable format :{f} is not handled (in {text})"),
                }
            }
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `now-7d` style relative times (and `now`) in epoch ms.
fn relative_ms(spec: &str, now: i64) -> i64 {
    let Some(rest) = spec.strip_prefix("now") else {
        panic!("time {spec:?} is not relative to now")
    };
    if rest.is_empty() {
        return now;
    }
    let n: String = rest[1..].chars().take_while(char::is_ascii_digit).collect();
    let unit = &rest[1 + n.len()..];
    let n: i64 = n.parse().unwrap_or_else(|_| panic!("time {spec:?}"));
    let ms = n * match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        other => panic!("time unit {other:?} in {spec:?}"),
    };
    if rest.starts_with('-') {
        now - ms
    } else {
        now + ms
    }
}

#[test]
fn interpolation_follows_grafana() {
    let vars: Vars = [
        (
            "g".to_string(),
            vec!["female".to_string(), "male".to_string()],
        ),
        ("tz".to_string(), vec!["UTC".to_string()]),
    ]
    .into();
    assert_eq!(
        interpolate(
            r#"{"from": ${__from}, "to": $__to, "g": "${g:csv}", "p": "${g:pipe}", "tz": "$tz"}"#,
            &vars,
            1,
            2
        ),
        r#"{"from": 1, "to": 2, "g": "female,male", "p": "female|male", "tz": "UTC"}"#
    );
    assert_eq!(
        relative_ms("now-7d", 1_000_000_000),
        1_000_000_000 - 7 * 86_400_000
    );
}

// ---------------------------------------------------------------------------------------------
// against a demo server

fn demo_server(dir: &Path) -> (Server, String) {
    let server = Server::start_with(dir, &["--demo", "--demo-every-ms", "200"]);
    let token = server
        .banner
        .iter()
        .find_map(|l| l.split("read-only API token:").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no read-only token in {:?}", server.banner))
        .to_string();
    (server, token)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A row value of the declared Infinity column type.
fn has_type(v: &Value, kind: &str) -> bool {
    match kind {
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "timestamp_epoch" | "timestamp_epoch_s" => v.is_i64() || v.is_u64(),
        "timestamp" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        other => panic!("column type {other} is not checked"),
    }
}

/// Sends an Infinity query as the plugin would; the rows.
fn infinity_call(
    http: &Http,
    place: &str,
    q: &Value,
    vars: &Vars,
    range: (i64, i64),
) -> Vec<Value> {
    assert_eq!(q["type"], "json", "{place}: type");
    assert_eq!(q["source"], "url", "{place}: source");
    assert!(
        matches!(q["parser"].as_str(), Some("backend") | Some("jq-backend")),
        "{place}: use a backend parser (alerting, public dashboards)"
    );
    let url = q["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{place}: no url"));
    assert!(
        url.starts_with('/'),
        "{place}: url {url} must be relative to the data source"
    );
    let mut url = interpolate(url, vars, range.0, range.1);
    // `url_options.params`: Infinity appends each as `key=value` to the query string
    for (i, p) in q["url_options"]["params"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = p["key"]
            .as_str()
            .unwrap_or_else(|| panic!("{place}: a param without a key"));
        let value = interpolate(
            p["value"].as_str().unwrap_or_default(),
            vars,
            range.0,
            range.1,
        );
        let sep = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        url = format!(
            "{url}{sep}{}={}",
            percent_encode(key),
            percent_encode(&value)
        );
    }
    let method = q["url_options"]["method"].as_str().unwrap_or("GET");
    let body = match method {
        "POST" => {
            let raw = q["url_options"]["data"].as_str().unwrap_or("{}");
            let text = interpolate(raw, vars, range.0, range.1);
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{place}: body {text} is not JSON: {e}"));
            Some(v)
        }
        "GET" => None,
        m => panic!("{place}: method {m}"),
    };
    let r = http
        .call(method, &url, body.as_ref())
        .unwrap_or_else(|e| panic!("{place}: {e}"));
    assert_eq!(r.status, 200, "{place}: {method} {url}: {}", r.body);
    let root = q["root_selector"].as_str().unwrap_or_default();
    let rows = if root.is_empty() {
        &r.body
    } else {
        &r.body[root]
    };
    let rows = rows
        .as_array()
        .unwrap_or_else(|| panic!("{place}: {url} did not answer an array: {}", r.body));
    let columns = q["columns"]
        .as_array()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| panic!("{place}: declare the columns"));
    // every row has every column, of the declared type or null (an unassigned case's
    // responsible); a column that is null in every row is a wrong selector
    for c in columns {
        let sel = c["selector"].as_str().unwrap_or_default();
        let kind = c["type"].as_str().unwrap_or("string");
        for row in rows {
            let v = row
                .get(sel)
                .unwrap_or_else(|| panic!("{place}: no column {sel} in {row}"));
            assert!(
                v.is_null() || has_type(v, kind),
                "{place}: column {sel} is not a {kind} in {row}"
            );
        }
        assert!(
            rows.is_empty() || rows.iter().any(|r| !r[sel].is_null()),
            "{place}: column {sel} is null in every row"
        );
    }
    if q["format"] == "timeseries" {
        assert!(
            columns.iter().any(|c| c["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("timestamp"))),
            "{place}: a time series needs a time column"
        );
    }
    rows.clone()
}

/// A Geomap panel's layers place rows by fields the target declares, and the rows the server
/// answered have those fields as coordinates on the Earth. Returns how many rows were placed.
fn geomap_places(place: &str, panel: &Value, q: &Value, rows: &[Value]) -> usize {
    // Infinity names a field by its column's `text`; keep the selector that fills it
    let columns: BTreeMap<&str, &str> = q["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["text"].as_str()?, c["selector"].as_str()?)))
        .collect();
    let layers = panel["options"]["layers"]
        .as_array()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("{place}: a geomap without layers"));
    for layer in layers {
        let loc = &layer["location"];
        assert_eq!(
            loc["mode"], "coords",
            "{place}: place markers by lat/lon fields"
        );
        for (axis, bound) in [("latitude", 90.0), ("longitude", 180.0)] {
            let field = loc[axis]
                .as_str()
                .unwrap_or_else(|| panic!("{place}: no {axis} field"));
            let sel = columns
                .get(field)
                .unwrap_or_else(|| panic!("{place}: {axis} field {field} is not a column"));
            for row in rows {
                let v = row[*sel]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{place}: {axis} {sel} is not a number in {row}"));
                assert!(
                    (-bound..=bound).contains(&v),
                    "{place}: {axis} {v} in {row}"
                );
            }
        }
        for style in ["size", "color"] {
            if let Some(field) = layer["config"]["style"][style]["field"].as_str() {
                assert!(
                    columns.contains_key(field),
                    "{place}: {style} by {field}, which is not a column"
                );
            }
        }
    }
    rows.len()
}

/// What Grafana's `toDataFrame` makes of one `/query` element: `Ok(rows)` or why it would say
/// "Unsupported data format".
fn frame_rows(e: &Value) -> Result<usize, String> {
    if let Some(fields) = e["fields"].as_array() {
        let lens: BTreeSet<usize> = fields
            .iter()
            .map(|f| f["values"].as_array().map_or(usize::MAX, Vec::len))
            .collect();
        return match lens.len() {
            1 if !lens.contains(&usize::MAX) => Ok(lens.into_iter().next().unwrap_or(0)),
            _ => Err(format!("fields of unequal length or without values: {e}")),
        };
    }
    if let Some(points) = e["datapoints"].as_array() {
        if !e["target"].is_string() {
            return Err(format!("time series without a target name: {e}"));
        }
        let mut last = i64::MIN;
        for p in points {
            let (Some(v), Some(t)) = (p.get(0), p.get(1).and_then(Value::as_i64)) else {
                return Err(format!("datapoint {p} is not [value, epoch_ms]"));
            };
            if !(v.is_number() || v.is_null()) || t <= last {
                return Err(format!(
                    "datapoint {p}: value not a number or time not ascending"
                ));
            }
            last = t;
        }
        return Ok(points.len());
    }
    if let Some(columns) = e["columns"].as_array() {
        let rows = e["rows"].as_array().ok_or("table without rows")?;
        for r in rows {
            let cells = r.as_array().ok_or("table row is not an array")?;
            if cells.len() != columns.len() {
                return Err(format!("row {r} does not have {} cells", columns.len()));
            }
            for (cell, col) in cells.iter().zip(columns) {
                let ok = match col["type"].as_str() {
                    Some("number") | Some("time") => cell.is_number() || cell.is_null(),
                    Some("string") | None => cell.is_string() || cell.is_null(),
                    Some(_) => true,
                };
                if !ok {
                    return Err(format!("cell {cell} is not a {}", col["type"]));
                }
            }
        }
        return Ok(rows.len());
    }
    Err(format!("Unsupported data format: {e}"))
}

/// Where a dashboard's queries go: the server, the dashboard, its time range (epoch ms).
#[derive(Clone, Copy)]
struct Sent<'a> {
    http: &'a Http,
    dashboard: &'a Value,
    range: (i64, i64),
}

/// Sends a simpod target as Grafana's `/query` would; the number of rows/points it drew.
fn simpod_call(
    on: &Sent<'_>,
    place: &str,
    panel: &Value,
    t: &Value,
    vars: &Vars,
    filters: &Value,
) -> usize {
    let Sent {
        http,
        dashboard,
        range,
    } = *on;
    let target = t["target"]
        .as_str()
        .unwrap_or_else(|| panic!("{place}: no target"));
    let payload: serde_json::Map<String, Value> = t["payload"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(interpolate(&s, vars, range.0, range.1)),
                other => other,
            };
            (k, v)
        })
        .collect();
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    let tz = dashboard["timezone"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("browser");
    let request = json!({
        "app": "dashboard",
        "requestId": "Q100",
        "timezone": tz,
        "range": {"from": iso(range.0), "to": iso(range.1),
                  "raw": {"from": dashboard["time"]["from"], "to": dashboard["time"]["to"]}},
        "rangeRaw": {"from": dashboard["time"]["from"], "to": dashboard["time"]["to"]},
        "interval": "1h",
        "intervalMs": 3_600_000,
        "maxDataPoints": 1000,
        "targets": [{
            "refId": t["refId"], "target": target, "payload": payload,
            "datasource": t["datasource"], "editorMode": t["editorMode"], "hide": false
        }],
        "scopedVars": {},
        "filters": filters,
        "panelId": panel["id"],
        "dashboardUID": dashboard["uid"],
        "startTime": range.1,
    });
    let r = http
        .call("POST", "/grafana/query", Some(&request))
        .unwrap_or_else(|e| panic!("{place}: {e}"));
    assert_eq!(
        r.status, 200,
        "{place}: /grafana/query {target}: {}",
        r.body
    );
    let elements = r
        .body
        .as_array()
        .unwrap_or_else(|| panic!("{place}: /query answered {}", r.body));
    assert!(!elements.is_empty(), "{place}: no frame for {target}");
    elements
        .iter()
        .map(|e| frame_rows(e).unwrap_or_else(|why| panic!("{place}: {target}: {why}")))
        .sum()
}

/// One concrete value per variable (the first option that is not All), to run every query a
/// second time with real filters.
fn concrete_vars(http: &Http, dashboard: &Value, defaults: &Vars, range: (i64, i64)) -> Vars {
    let mut out = defaults.clone();
    for v in variables(dashboard) {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let first = match v["type"].as_str() {
            Some("custom") => v["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["value"].as_str())
                .find(|x| *x != "$__all")
                .map(String::from),
            Some("query") if v["datasource"]["type"] == INFINITY => {
                let q = &v["query"]["infinityQuery"];
                let rows = infinity_call(http, &name, q, defaults, range);
                let sel = q["columns"][0]["selector"].as_str().unwrap_or_default();
                rows.iter()
                    .filter_map(|r| r[sel].as_str())
                    .find(|x| *x != "none")
                    .map(String::from)
            }
            _ => None,
        };
        if let Some(first) = first {
            out.insert(name, vec![first]);
        }
    }
    out
}

#[test]
fn every_dashboard_query_is_answered_by_a_demo_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, token) = demo_server(dir.path());
    let http = Http::new(&server.addr, Auth::Bearer(token));

    let listed = http.expect("POST", "/grafana/metrics", Some(&json!({})), 200);
    let listed: BTreeSet<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str())
        .collect();
    let tag_keys = http.expect("POST", "/grafana/tag-keys", Some(&json!({})), 200);

    let now = now_ms();
    let (mut infinity, mut simpod, mut placed) = (0, 0, 0);
    for (file, d) in dashboards() {
        let range = (
            relative_ms(d["time"]["from"].as_str().unwrap_or("now-6h"), now),
            relative_ms(d["time"]["to"].as_str().unwrap_or("now"), now),
        );
        let defaults = default_vars(&d);
        let concrete = concrete_vars(&http, &d, &defaults, range);
        // an ad-hoc filter variable: its keys must be lpm's tag keys, and queries run with none
        // and with one filter per key
        let mut filter_sets = vec![json!([])];
        for v in variables(&d).iter().filter(|v| v["type"] == "adhoc") {
            for key in tag_keys.as_array().into_iter().flatten() {
                let key = key["text"].as_str().unwrap_or_default();
                let values = http.expect(
                    "POST",
                    "/grafana/tag-values",
                    Some(&json!({"key": key})),
                    200,
                );
                let value = values[0]["text"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no values of tag {key}"));
                filter_sets.push(json!([{"key": key, "operator": "=", "value": value}]));
            }
            assert!(
                v["filters"].is_array(),
                "{file}: ad-hoc variable without filters"
            );
        }
        for q in queries(&file, &d) {
            match q.ds_type.as_str() {
                INFINITY => {
                    let query = if q.panel.is_some() {
                        q.query
                    } else {
                        &q.query["infinityQuery"]
                    };
                    let rows = infinity_call(&http, &q.place, query, &defaults, range);
                    assert!(
                        !rows.is_empty(),
                        "{}: no rows with the default variables",
                        q.place
                    );
                    if let Some(panel) = q.panel.filter(|p| p["type"] == "geomap") {
                        placed += geomap_places(&q.place, panel, query, &rows);
                    }
                    infinity_call(&http, &q.place, query, &concrete, range);
                    infinity += 1;
                }
                SIMPOD => {
                    let panel = q
                        .panel
                        .unwrap_or_else(|| panic!("{}: simpod variable", q.place));
                    let target = q.query["target"].as_str().unwrap_or_default();
                    assert!(
                        listed.contains(target),
                        "{}: /grafana/metrics does not list {target}",
                        q.place
                    );
                    let on = Sent {
                        http: &http,
                        dashboard: &d,
                        range,
                    };
                    let drawn = simpod_call(&on, &q.place, panel, q.query, &defaults, &json!([]));
                    assert!(drawn > 0, "{}: {target} drew no rows or points", q.place);
                    for filters in &filter_sets {
                        simpod_call(&on, &q.place, panel, q.query, &concrete, filters);
                    }
                    simpod += 1;
                }
                PROMETHEUS => {}
                other => panic!("{}: data source type {other}", q.place),
            }
        }
    }
    assert!(
        infinity >= 10 && simpod >= 10,
        "only {infinity} Infinity and {simpod} simpod queries"
    );
    // the analytics dashboard's hot-spot map: the demo's cells, past the readers' threshold
    assert!(placed > 0, "no geomap panel placed a row");
}

#[test]
fn promql_names_only_exposed_metrics_and_promtool_accepts_the_scrape() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _token) = demo_server(dir.path());
    let http = Http::new(&server.addr, Auth::None);
    // a few requests so the HTTP families have samples
    for _ in 0..3 {
        http.call("GET", "/readyz", None).expect("GET /readyz");
    }
    // the state sizes are mirrored by a loop every 250 ms: wait for its first pass
    let scrape = wait_until(
        "the state-size gauges on /metrics",
        Duration::from_secs(20),
        || match http.call("GET", "/metrics", None)?.body {
            Value::String(s) if s.contains("\nlpm_upsert_state_rows{") => Ok(s),
            Value::String(_) => Err("no lpm_upsert_state_rows yet".into()),
            other => Err(format!("/metrics is not text: {other}")),
        },
    );
    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(ok, "promtool check metrics rejects /metrics:\n{out}");

    let mut exposed = exposed_names(&scrape);
    // With --kafka lpm appends the Kafka source's families (rendered by this very code).
    let mut kafka = String::new();
    lpm_connectors::kafka::KafkaStats::new(false).render_prometheus(
        &mut kafka,
        Duration::from_secs(10),
        Duration::from_secs(60),
    );
    exposed.extend(exposed_names(&kafka));
    // With --notify-* lpm registers the notification families (the same constructor).
    let registry = prometheus::Registry::new();
    let notify =
        lpm_service::notify::metrics::NotifyMetrics::new(&registry).expect("notify metrics");
    notify.sent.with_label_values(&["webhook"]);
    notify.failed.with_label_values(&["webhook"]);
    notify.retried.with_label_values(&["webhook"]);
    notify.pending.with_label_values(&["webhook"]);
    let notify_text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode");
    exposed.extend(exposed_names(&notify_text));
    exposed.extend(PROMETHEUS_MADE.iter().map(|s| s.to_string()));

    let mut missing = Vec::new();
    let mut named = 0;
    for (place, expr) in promql_expressions() {
        let names = promql_metric_names(&expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr}");
        for n in names {
            named += 1;
            if !exposed.contains(&n) {
                missing.push(format!("{place}: {n}"));
            }
        }
    }
    assert!(named > 30, "only {named} metric references found");
    assert!(
        missing.is_empty(),
        "metrics /metrics does not expose:\n{}",
        missing.join("\n")
    );
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first sample of an instant-query result (0 when empty).
fn first_value(result: &[Value]) -> f64 {
    result
        .first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_real_prometheus_scrapes_the_demo_server() {
    let prometheus = tool("prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _token) = demo_server(&dir.path().join("lpm"));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: lpm\n    static_configs:\n      - targets: [\"{}\"]\n",
            root().join(RULES).display(),
            server.addr
        ),
    )
    .expect("write the Prometheus config");
    let port = free_port();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prometheus");
    let mut prom = Killed(child);
    let api = Http::new(&format!("127.0.0.1:{port}"), Auth::None);
    let query = |q: &str| -> Result<Vec<Value>, String> {
        let r = api.call(
            "GET",
            &format!("/api/v1/query?query={}", percent_encode(q)),
            None,
        )?;
        if r.status != 200 || r.body["status"] != "success" {
            return Err(format!("{q}: {} {}", r.status, r.body));
        }
        Ok(r.body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    };
    let started = Instant::now();
    let early_exit = |prom: &mut Killed| {
        if let Ok(Some(status)) = prom.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = prom.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("prometheus exited ({status}):\n{err}");
        }
    };
    // two scrapes of lpm: two samples of its `up` series
    wait_until("two scrapes of lpm", Duration::from_secs(60), || {
        early_exit(&mut prom);
        let n = first_value(&query("count_over_time(up{job=\"lpm\"}[1m])")?);
        if n >= 2.0 {
            Ok(())
        } else {
            Err(format!("{n} scrapes so far"))
        }
    });
    let ingest = wait_until("the ingest rate", Duration::from_secs(30), || {
        let r = query("sum by (table) (rate(lpm_ingest_events_total{job=\"lpm\"}[1m]))")?;
        if r.is_empty() {
            Err("empty".into())
        } else {
            Ok(r)
        }
    });
    let freshness = wait_until("the freshness histogram", Duration::from_secs(30), || {
        let r = query(
            "histogram_quantile(0.99, sum by (le) (rate(lpm_freshness_seconds_bucket{job=\"lpm\"}[1m])))",
        )?;
        let observed = first_value(&query("sum(lpm_freshness_seconds_count{job=\"lpm\"})")?);
        if r.is_empty() || observed < 1.0 {
            Err(format!("quantile {r:?}, {observed} observations"))
        } else {
            Ok(r)
        }
    });
    // the rules load and evaluate against the real series
    let rules = api.expect("GET", "/api/v1/rules", None, 200);
    let groups = rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let loaded: usize = groups
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(loaded, alert_rules().len(), "rules loaded: {rules}");
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "prometheus: ingest rate by table {}, freshness p99 {}, after {:?}",
        Value::Array(
            ingest
                .iter()
                .map(|s| json!([s["metric"]["table"], s["value"][1]]))
                .collect()
        ),
        freshness[0]["value"][1],
        started.elapsed()
    );
    drop(prom);
    drop(server);
}
