//! The production-shaped stack (`docker-compose.yml`, `Dockerfile`, `deploy/`,
//! `dashboards/provisioning/`) checked by construction.
//!
//! No Docker engine runs where these tests run, so the stack cannot be started: every file is
//! parsed and cross-checked against the repo (paths, volumes, ports, variables, start order),
//! against the `lpm` binary (each `LPM_*` variable must be one its `--help` lists) and against
//! the column catalog (the tables Debezium captures are the ones lpm consumes). When the
//! `docker compose` plugin is installed, `docker compose config -q` runs too; when it is not,
//! the test says so loudly.
//!
//! YAML is read with `serde_norway`, the maintained fork of the archived `serde_yaml` (same
//! libyaml-based parser, releases in 2025), straight into `serde_json::Value`, so the checks walk
//! the same JSON values as the connector config.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

/// The lpm service's name in the compose file; Prometheus and Grafana address it by it.
const LPM_SERVICE: &str = "lpm";
/// The connector config, relative to the repo root.
const CONNECTOR_JSON: &str = "deploy/debezium/lost-persons-mysql.json";
const ENV_EXAMPLE: &str = "deploy/.env.example";

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub(crate) fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn services(compose: &Value) -> &Map<String, Value> {
    compose["services"]
        .as_object()
        .expect("docker-compose.yml has a `services` mapping")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    services(compose)
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no `{name}` service"))
}

/// `KEY=VALUE` lines of the env file (comments and blank lines skipped).
fn env_example() -> BTreeMap<String, String> {
    read(ENV_EXAMPLE)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{ENV_EXAMPLE}: not KEY=VALUE: {l:?}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// One `$NAME` / `${NAME...}` reference in a compose string.
#[derive(Debug)]
struct VarRef {
    name: String,
    /// `${NAME:-x}` or `${NAME-x}`.
    default: Option<String>,
}

/// The variable references of one string, compose-style (`$$` is a literal `$`).
fn var_refs(s: &str) -> Result<Vec<VarRef>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let close = s[i..]
                    .find('}')
                    .map(|c| i + c)
                    .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                let body = &s[i + 2..close];
                let end = body
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(body.len());
                let (name, rest) = body.split_at(end);
                if name.is_empty() {
                    return Err(format!("empty variable name in {s:?}"));
                }
                let default = rest
                    .strip_prefix(":-")
                    .or_else(|| rest.strip_prefix('-'))
                    .map(str::to_string);
                if default.is_none() && !rest.is_empty() && !rest.starts_with(['?', ':']) {
                    return Err(format!("unknown interpolation {body:?} in {s:?}"));
                }
                out.push(VarRef {
                    name: name.to_string(),
                    default,
                });
                i = close + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let rest = &s[i + 1..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                out.push(VarRef {
                    name: rest[..end].to_string(),
                    default: None,
                });
                i += 1 + end;
            }
            _ => {
                return Err(format!(
                    "a lone `$` in {s:?} (write `$$` for a literal one)"
                ))
            }
        }
    }
    Ok(out)
}

/// Compose interpolation of `s` with `env` (unset variables take their default, else "").
fn interpolate(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body_on) = tail.strip_prefix("${") {
            let close = body_on.find('}').unwrap_or(body_on.len());
            let refs = var_refs(tail.get(..close + 3).unwrap_or(tail)).unwrap_or_default();
            if let Some(r) = refs.first() {
                let value = env
                    .get(&r.name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .or_else(|| r.default.clone())
                    .unwrap_or_default();
                out.push_str(&value);
            }
            rest = body_on.get(close + 1..).unwrap_or("");
        } else {
            let name_len = tail[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len() - 1);
            out.push_str(env.get(&tail[1..1 + name_len]).map_or("", String::as_str));
            rest = &tail[1 + name_len..];
        }
    }
    out.push_str(rest);
    out
}

/// Every string in a JSON value (recursively), keys excluded.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A scalar as text (compose allows numbers and booleans where strings are meant).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A service's environment as name -> raw value (mapping or `NAME=value` list form).
fn environment(svc: &Value) -> BTreeMap<String, String> {
    match &svc["environment"] {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
            .collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// One volume entry: bind (`./x:/y[:ro]`, `type: bind`) or named volume.
#[derive(Debug)]
struct Mount {
    source: String,
    target: String,
    bind: bool,
}

fn mounts(svc: &Value) -> Vec<Mount> {
    let Some(list) = svc["volumes"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) => {
                let mut parts = s.splitn(3, ':');
                let source = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let bind = source.starts_with(['.', '/', '~']);
                Mount {
                    source,
                    target,
                    bind,
                }
            }
            other => {
                let kind = other["type"].as_str().unwrap_or("volume");
                Mount {
                    source: other["source"].as_str().unwrap_or("").to_string(),
                    target: other["target"].as_str().unwrap_or("").to_string(),
                    bind: kind == "bind",
                }
            }
        })
        .collect()
}

/// A path in the compose file, relative to the repo root (the compose project directory).
fn repo_path(rel: &str) -> PathBuf {
    root().join(rel.trim_start_matches("./"))
}

/// The services built from this repo's Dockerfile: they run the `lpm` binary.
fn lpm_services(compose: &Value) -> Vec<(&String, &Value)> {
    services(compose)
        .iter()
        .filter(|(_, s)| !s["build"].is_null())
        .collect()
}

/// The port of lpm's `LPM_LISTEN` in the compose file.
fn lpm_port(compose: &Value) -> u16 {
    let env = environment(service(compose, LPM_SERVICE));
    let listen = env
        .get("LPM_LISTEN")
        .expect("the lpm service sets LPM_LISTEN");
    listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("LPM_LISTEN={listen:?} has no port"))
}

#[test]
fn compose_paths_exist() {
    let compose = compose();
    let mut checked = 0;
    for (name, svc) in services(&compose) {
        match &svc["build"] {
            Value::Null => {}
            build => {
                let (context, dockerfile) = match build {
                    Value::String(c) => (c.clone(), "Dockerfile".to_string()),
                    b => (
                        b["context"].as_str().unwrap_or(".").to_string(),
                        b["dockerfile"].as_str().unwrap_or("Dockerfile").to_string(),
                    ),
                };
                let context = repo_path(&context);
                assert!(
                    context.is_dir(),
                    "{name}: build context {context:?} is missing"
                );
                let file = context.join(&dockerfile);
                assert!(file.is_file(), "{name}: Dockerfile {file:?} is missing");
                checked += 2;
            }
        }
        for m in mounts(svc).iter().filter(|m| m.bind) {
            let path = repo_path(&m.source);
            assert!(
                path.exists(),
                "{name}: bind mount source {} does not exist in the repo",
                m.source
            );
            checked += 1;
        }
        let env_files: Vec<String> = match &svc["env_file"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|e| e.as_str().or_else(|| e["path"].as_str()))
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        for f in env_files {
            assert!(repo_path(&f).is_file(), "{name}: env_file {f} is missing");
            checked += 1;
        }
    }
    // 2 builds x 2 + mysql 2 + connect-register 1 + prometheus 1 + grafana 2: a parse that
    // silently found nothing must not pass.
    assert!(checked >= 10, "only {checked} paths found to check");
    // The register one-shot runs a script from its mount.
    let register = service(&compose, "connect-register");
    let script = strings_of(&register["entrypoint"]);
    assert!(
        script.iter().any(|s| s == "/deploy/debezium/register.sh"),
        "connect-register runs {script:?}"
    );
    assert!(repo_path("deploy/debezium/register.sh").is_file());
}

fn strings_of(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    strings(v, &mut out);
    out
}

#[test]
fn compose_named_volumes_are_declared_and_used() {
    let compose = compose();
    let declared: BTreeSet<String> = compose["volumes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut used = BTreeSet::new();
    for (name, svc) in services(&compose) {
        for m in mounts(svc).iter().filter(|m| !m.bind) {
            assert!(
                declared.contains(&m.source),
                "{name}: named volume {:?} is not declared under top-level `volumes`",
                m.source
            );
            assert!(m.target.starts_with('/'), "{name}: volume target {m:?}");
            used.insert(m.source.clone());
        }
    }
    assert_eq!(used, declared, "declared volumes that no service uses");
    for stateful in ["mysql", "kafka", LPM_SERVICE, "prometheus", "grafana"] {
        assert!(
            mounts(service(&compose, stateful)).iter().any(|m| !m.bind),
            "{stateful} keeps its state in no named volume"
        );
    }
}

/// Published host ports (`HOST:CONTAINER`, `IP:HOST:CONTAINER`, long form) with `env` applied.
fn published_ports(compose: &Value, env: &BTreeMap<String, String>) -> Vec<(String, u16, u16)> {
    let mut out = Vec::new();
    for (name, svc) in services(compose) {
        for p in svc["ports"].as_array().into_iter().flatten() {
            let (host, container) = match p {
                Value::Object(o) => (
                    o.get("published").and_then(text),
                    o.get("target").and_then(text).unwrap_or_default(),
                ),
                other => {
                    let s = interpolate(&text(other).unwrap_or_default(), env);
                    let s = s.split('/').next().unwrap_or("").to_string();
                    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
                    match parts.as_slice() {
                        [c] => (None, c.to_string()),
                        [c, h, ..] => (Some(h.to_string()), c.to_string()),
                        [] => (None, String::new()),
                    }
                }
            };
            let Some(host) = host else { continue };
            let host: u16 = interpolate(&host, env)
                .parse()
                .unwrap_or_else(|_| panic!("{name}: published port {p} is not a number"));
            let container: u16 = container
                .parse()
                .unwrap_or_else(|_| panic!("{name}: container port {p} is not a number"));
            out.push((name.clone(), host, container));
        }
    }
    out
}

#[test]
fn compose_published_ports_are_unique_and_only_the_user_facing_ones() {
    let compose = compose();
    for (label, env) in [("defaults", BTreeMap::new()), (ENV_EXAMPLE, env_example())] {
        let ports = published_ports(&compose, &env);
        let mut seen = HashMap::new();
        for (svc, host, _) in &ports {
            if let Some(other) = seen.insert(*host, svc.clone()) {
                panic!("with {label}: host port {host} is published by both {other} and {svc}");
            }
        }
        let by_service: BTreeMap<&str, (u16, u16)> = ports
            .iter()
            .map(|(s, h, c)| (s.as_str(), (*h, *c)))
            .collect();
        let expected: BTreeMap<&str, (u16, u16)> = [
            ("grafana", (3000, 3000)),
            (LPM_SERVICE, (8080, lpm_port(&compose))),
            // the `cluster` profile's process 0 (docs/scale-out.md)
            ("lpm-cluster-0", (8081, 8080)),
            ("prometheus", (9090, 9090)),
            ("alertmanager", (9093, 9093)),
        ]
        .into_iter()
        .collect();
        assert_eq!(by_service, expected, "published ports with {label}");
    }
}

#[test]
fn compose_variables_have_defaults_or_are_in_env_example() {
    let compose = compose();
    let example = env_example();
    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for s in strings_of(&compose) {
        let refs = var_refs(&s).unwrap_or_else(|e| panic!("docker-compose.yml: {e}"));
        for r in refs {
            if r.default.is_none() && !example.contains_key(&r.name) {
                missing.push(r.name.clone());
            }
            used.insert(r.name);
        }
    }
    assert!(
        missing.is_empty(),
        "variables with no default and not in {ENV_EXAMPLE}: {missing:?}"
    );
    assert!(
        used.len() >= 10,
        "only {} variables found: {used:?}",
        used.len()
    );
    let unused: Vec<&String> = example.keys().filter(|k| !used.contains(*k)).collect();
    assert!(
        unused.is_empty(),
        "{ENV_EXAMPLE} sets variables docker-compose.yml never reads: {unused:?}"
    );
}

/// `depends_on` as (target, condition), list form meaning `service_started`.
fn depends_on(svc: &Value) -> Vec<(String, String)> {
    match &svc["depends_on"] {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|t| (t.to_string(), "service_started".to_string()))
            .collect(),
        Value::Object(o) => o
            .iter()
            .map(|(t, c)| {
                let cond = c["condition"].as_str().unwrap_or("service_started");
                (t.clone(), cond.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn has_healthcheck(svc: &Value) -> bool {
    let hc = &svc["healthcheck"];
    hc.is_object() && hc["disable"] != Value::Bool(true) && !hc["test"].is_null()
}

#[test]
fn compose_start_order_is_sound() {
    let compose = compose();
    let all = services(&compose);
    for (name, svc) in all {
        for (target, condition) in depends_on(svc) {
            let dep = all
                .get(&target)
                .unwrap_or_else(|| panic!("{name} depends on unknown service {target}"));
            match condition.as_str() {
                "service_healthy" => assert!(
                    has_healthcheck(dep),
                    "{name} waits for {target} to be healthy, but {target} has no healthcheck"
                ),
                "service_completed_successfully" => assert_eq!(
                    dep["restart"].as_str().unwrap_or("no"),
                    "no",
                    "{name} waits for {target} to complete, but {target} restarts"
                ),
                "service_started" => {}
                other => panic!("{name}: unknown depends_on condition {other}"),
            }
        }
    }
    let lpm: BTreeMap<String, String> = depends_on(service(&compose, LPM_SERVICE))
        .into_iter()
        .collect();
    for (target, condition) in [
        ("lpm-migrate", "service_completed_successfully"),
        ("kafka", "service_healthy"),
        ("connect-register", "service_completed_successfully"),
        ("mysql", "service_healthy"),
    ] {
        assert_eq!(
            lpm.get(target).map(String::as_str),
            Some(condition),
            "lpm must wait for {target}: {condition}"
        );
    }
    for svc in ["mysql", "kafka", "connect", LPM_SERVICE] {
        assert!(
            has_healthcheck(service(&compose, svc)),
            "{svc} has no healthcheck"
        );
    }
    let lpm_check = strings_of(&service(&compose, LPM_SERVICE)["healthcheck"]["test"]).join(" ");
    assert!(
        lpm_check.contains("/readyz"),
        "lpm's healthcheck: {lpm_check}"
    );
    let migrate = depends_on(service(&compose, "lpm-migrate"));
    assert!(migrate.contains(&("mysql".into(), "service_healthy".into())));
}

/// `[env: NAME=...]` names in `lpm <sub> --help`.
fn help_env_names(sub: &str) -> Result<(BTreeSet<String>, String), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_lpm"))
        .args([sub, "--help"])
        .output()
        .map_err(|e| format!("running lpm {sub} --help: {e}"))?;
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "`lpm {sub} --help` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let names = help
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_string)
        .collect();
    Ok((names, help))
}

/// Every `LPM_*` variable and every `--flag` of the services running `lpm <sub>` is one that
/// `lpm <sub> --help` lists.
fn check_lpm_services_against_help(sub: &str) {
    let compose = compose();
    let running: Vec<_> = lpm_services(&compose)
        .into_iter()
        .filter(|(_, s)| strings_of(&s["command"]).first().map(String::as_str) == Some(sub))
        .collect();
    assert!(!running.is_empty(), "no compose service runs `lpm {sub}`");
    let (names, help) = help_env_names(sub).unwrap_or_else(|e| panic!("{e}"));
    for (name, svc) in running {
        let unknown: Vec<String> = environment(svc)
            .into_keys()
            .filter(|k| k.starts_with("LPM_") && !names.contains(k))
            .collect();
        assert!(
            unknown.is_empty(),
            "{name} sets {unknown:?}, which `lpm {sub} --help` does not list (it lists {names:?})"
        );
        for flag in strings_of(&svc["command"]).iter().skip(1) {
            if let Some(flag) = flag.strip_prefix("--") {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    help.contains(&format!("--{flag} ")) || help.contains(&format!("--{flag}\n")),
                    "{name} passes --{flag}, which `lpm {sub} --help` does not list"
                );
            }
        }
    }
}

#[test]
fn compose_serve_env_vars_are_serve_flags() {
    check_lpm_services_against_help("serve");
}

#[test]
fn compose_migrate_env_vars_are_migrate_flags() {
    check_lpm_services_against_help("migrate");
}

/// The tables of the embedded catalog (the `CREATE TABLE` names of its schema, each resolved
/// through `Catalog::lpm()`).
fn catalog_tables() -> BTreeSet<String> {
    let catalog = lpm_connectors::Catalog::lpm();
    let tables: BTreeSet<String> = lpm_connectors::catalog::LPM_SCHEMA
        .split("CREATE TABLE")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .map(|t| t.trim_matches('`').to_string())
        .collect();
    for t in &tables {
        assert!(
            catalog.table(t).is_some(),
            "Catalog::lpm() has no table {t}"
        );
    }
    tables
}

fn connector() -> Map<String, Value> {
    serde_json::from_str(&read(CONNECTOR_JSON))
        .unwrap_or_else(|e| panic!("{CONNECTOR_JSON} is not a JSON object: {e}"))
}

fn connector_str<'a>(c: &'a Map<String, Value>, key: &str) -> &'a str {
    c.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{CONNECTOR_JSON} has no string {key}"))
}

#[test]
fn debezium_connector_matches_the_catalog_and_lpm() {
    let c = connector();
    let compose = compose();
    let lpm_env = environment(service(&compose, LPM_SERVICE));
    let setting = |name: &str, default: &str| {
        lpm_env
            .get(name)
            .map(|v| interpolate(v, &BTreeMap::new()))
            .unwrap_or_else(|| default.to_string())
    };
    let database = setting("LPM_KAFKA_DATABASE", "lost_persons_db");
    let prefix = setting("LPM_KAFKA_PREFIX", "lpm");
    assert!(
        !lpm_env.contains_key("LPM_KAFKA_TOPICS"),
        "LPM_KAFKA_TOPICS overrides prefix/database; this check compares those"
    );

    assert_eq!(connector_str(&c, "topic.prefix"), prefix);
    assert_eq!(connector_str(&c, "database.include.list"), database);
    let tables: BTreeSet<String> = connector_str(&c, "table.include.list")
        .split(',')
        .map(|t| t.trim().to_string())
        .collect();
    let expected: BTreeSet<String> = catalog_tables()
        .iter()
        .map(|t| format!("{database}.{t}"))
        .collect();
    assert_eq!(tables, expected, "table.include.list vs Catalog::lpm()");
    assert_eq!(expected.len(), 6);

    // register.sh names the connector after the file.
    let stem = Path::new(CONNECTOR_JSON)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    assert_eq!(connector_str(&c, "name"), stem);

    // The settings lpm's semantics depend on (docs/deploy.md says why).
    assert_eq!(
        connector_str(&c, "connector.class"),
        "io.debezium.connector.mysql.MySqlConnector"
    );
    assert_eq!(connector_str(&c, "skipped.operations"), "none");
    assert_eq!(connector_str(&c, "tombstones.on.delete"), "true");
    assert!(["precise", "string"].contains(&connector_str(&c, "decimal.handling.mode")));
    let heartbeat: u64 = connector_str(&c, "heartbeat.interval.ms")
        .parse()
        .expect("heartbeat.interval.ms is a number");
    assert!(heartbeat > 0);
    assert_eq!(
        connector_str(&c, "topic.creation.default.cleanup.policy"),
        "compact"
    );
    assert_eq!(
        connector_str(&c, "topic.creation.default.replication.factor"),
        "1"
    );
    for side in ["key", "value"] {
        assert_eq!(
            connector_str(&c, &format!("{side}.converter")),
            "org.apache.kafka.connect.json.JsonConverter"
        );
        assert!(["true", "false"].contains(&connector_str(
            &c,
            &format!("{side}.converter.schemas.enable")
        )));
    }
    assert_eq!(connector_str(&c, "database.hostname"), "mysql");
    service(&compose, "mysql");

    // The password is resolved by Connect's env config provider from its own environment.
    let password = connector_str(&c, "database.password");
    let var = password
        .strip_prefix("${env:")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("database.password {password:?} is not ${{env:NAME}}"));
    let connect_env = environment(service(&compose, "connect"));
    assert!(connect_env.contains_key(var), "connect does not set {var}");
    assert_eq!(
        connect_env
            .get("CONNECT_CONFIG_PROVIDERS")
            .map(String::as_str),
        Some("env")
    );

    // Debezium joins the replication topology: its server id must differ from MySQL's.
    let mysql_id = read("deploy/mysql/conf.d/lpm.cnf")
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "server-id")
        .map(|(_, v)| v.trim().to_string())
        .expect("lpm.cnf sets server-id");
    assert_ne!(connector_str(&c, "database.server.id"), mysql_id);

    // The dead-letter topic kafka-init creates is the one lpm writes.
    let dead = setting("LPM_KAFKA_DEAD_LETTER_TOPIC", "lpm.dead-letter");
    let init = strings_of(&service(&compose, "kafka-init")["command"]);
    assert!(
        init.contains(&dead),
        "kafka-init creates {init:?}, lpm writes {dead}"
    );
}

#[test]
fn prometheus_scrapes_lpm() {
    let compose = compose();
    let prom = service(&compose, "prometheus");
    let mount = mounts(prom)
        .into_iter()
        .find(|m| m.target == "/etc/prometheus/prometheus.yml")
        .expect("prometheus mounts its config");
    let config = yaml(mount.source.trim_start_matches("./"));
    let want = format!("{LPM_SERVICE}:{}", lpm_port(&compose));
    let job = config["scrape_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| strings_of(&j["static_configs"]).contains(&want))
        .unwrap_or_else(|| panic!("no scrape job targets {want}"));
    assert_eq!(
        job["metrics_path"].as_str().unwrap_or("/metrics"),
        "/metrics"
    );
}

/// The Alertmanager wiring: Prometheus sends to the compose service, the service mounts the
/// repo's config, and the file the config reads the webhook URL from is the one the service's
/// command writes, on its data volume. Delivery itself is tested with real processes in
/// tests/alerting.rs.
#[test]
fn prometheus_sends_alerts_to_the_stack_alertmanager() {
    let compose = compose();
    let prom = service(&compose, "prometheus");
    let prom_config = yaml("deploy/prometheus/prometheus.yml");
    let targets = strings_of(&prom_config["alerting"]["alertmanagers"]);
    assert_eq!(
        targets,
        vec!["alertmanager:9093".to_string()],
        "alerting targets"
    );
    assert_eq!(
        prom_config["global"]["external_labels"]["runbook_base_url"].as_str(),
        Some("${LPM_RUNBOOK_BASE_URL}"),
        "the runbook base comes from the environment"
    );
    assert!(
        environment(prom).contains_key("LPM_RUNBOOK_BASE_URL"),
        "the prometheus service sets LPM_RUNBOOK_BASE_URL"
    );

    let am = service(&compose, "alertmanager");
    let mount = mounts(am)
        .into_iter()
        .find(|m| m.target == "/etc/alertmanager/alertmanager.yml")
        .expect("alertmanager mounts its config");
    let config = yaml(mount.source.trim_start_matches("./"));
    let receiver = config["route"]["receiver"]
        .as_str()
        .expect("a default receiver");
    let receivers = config["receivers"].as_array().expect("receivers");
    let default = receivers
        .iter()
        .find(|r| r["name"] == receiver)
        .unwrap_or_else(|| panic!("the default receiver {receiver} is not defined"));
    let url_file = default["slack_configs"][0]["api_url_file"]
        .as_str()
        .expect("the default receiver reads its webhook URL from a file");
    let command = strings_of(&am["command"]).join(" ");
    assert!(
        command.contains(&format!("> {url_file}")),
        "the alertmanager command writes {url_file}: {command}"
    );
    assert!(
        command.contains("--config.file=/etc/alertmanager/alertmanager.yml"),
        "{command}"
    );
    let data = mounts(am)
        .into_iter()
        .find(|m| url_file.starts_with(&format!("{}/", m.target)))
        .unwrap_or_else(|| panic!("{url_file} is on no volume"));
    assert!(
        !data.source.starts_with('.'),
        "a named volume, not the repo"
    );
}

#[test]
fn grafana_is_provisioned_from_the_repo() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let grafana_env = environment(grafana);
    assert!(grafana_env
        .get("GF_INSTALL_PLUGINS")
        .is_some_and(|p| p.contains("yesoreyeram-infinity-datasource")));
    let mounts = mounts(grafana);
    let provisioning = mounts
        .iter()
        .find(|m| m.target == "/etc/grafana/provisioning")
        .expect("grafana mounts its provisioning");
    let prov_dir = repo_path(&provisioning.source);

    // Data sources: unique uids, Infinity at lpm, Prometheus at the prometheus service.
    let mut uids = BTreeSet::new();
    let mut infinity = 0;
    let lpm_url = format!("http://{LPM_SERVICE}:{}", lpm_port(&compose));
    for entry in std::fs::read_dir(prov_dir.join("datasources")).expect("datasources dir") {
        let path = entry.expect("dir entry").path();
        let rel = path.strip_prefix(root()).expect("inside the repo");
        let doc = yaml(&rel.to_string_lossy());
        for ds in doc["datasources"].as_array().into_iter().flatten() {
            let uid = ds["uid"].as_str().expect("every data source has a uid");
            assert!(
                uids.insert(uid.to_string()),
                "duplicate data source uid {uid}"
            );
            // secrets ($LPM_GRAFANA_TOKEN) come from grafana's environment
            for s in strings_of(&ds["secureJsonData"]) {
                for r in var_refs(&s).unwrap_or_default() {
                    assert!(
                        grafana_env.contains_key(&r.name),
                        "grafana lacks {}",
                        r.name
                    );
                }
            }
            match ds["type"].as_str() {
                Some("yesoreyeram-infinity-datasource") => {
                    infinity += 1;
                    assert_eq!(ds["url"].as_str(), Some(lpm_url.as_str()));
                    assert!(strings_of(&ds["jsonData"]["allowedHosts"]).contains(&lpm_url));
                }
                Some("simpod-json-datasource") => {
                    assert_eq!(
                        ds["url"].as_str(),
                        Some(format!("{lpm_url}/grafana").as_str())
                    );
                }
                Some("prometheus") => {
                    assert_eq!(ds["url"].as_str(), Some("http://prometheus:9090"));
                }
                other => panic!("unexpected data source type {other:?}"),
            }
        }
    }
    assert_eq!(infinity, 1, "one Infinity data source");
    assert_eq!(uids.len(), 3, "Infinity, simpod JSON and Prometheus");

    // The dashboard provider reads the folder the dashboards mount brings in.
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(prov_dir.join("dashboards")).expect("dashboards dir") {
        let path = entry.expect("dir entry").path();
        let rel = path.strip_prefix(root()).expect("inside the repo");
        let doc = yaml(&rel.to_string_lossy());
        for p in doc["providers"].as_array().into_iter().flatten() {
            paths.push(
                p["options"]["path"]
                    .as_str()
                    .expect("provider path")
                    .to_string(),
            );
        }
    }
    assert!(!paths.is_empty(), "no dashboard provider");
    for path in paths {
        let m = mounts
            .iter()
            .find(|m| m.target == path && m.bind)
            .unwrap_or_else(|| panic!("the provider reads {path}, which grafana does not mount"));
        assert!(repo_path(&m.source).join("README.md").is_file());
    }
}

/// Dockerfile instructions, continuation lines joined, comments dropped.
pub(crate) fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_and_runs_lpm_as_non_root() {
    let text = read("Dockerfile");
    let ins = dockerfile_instructions(&text);
    let stages: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "the Dockerfile is not multi-stage");
    let names: Vec<String> = stages
        .iter()
        .filter_map(|&i| {
            let words: Vec<&str> = ins[i].1.split_whitespace().collect();
            words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|p| words.get(p + 1))
                .map(|s| s.to_string())
        })
        .collect();
    let last = *stages.last().unwrap_or(&0);
    let user = ins[last..]
        .iter()
        .rfind(|(op, _)| op == "USER")
        .map(|(_, u)| u.clone())
        .expect("the final stage sets USER");
    let who = user.split(':').next().unwrap_or("");
    assert!(!["", "root", "0"].contains(&who), "final USER is {user}");

    let ignored = crate::dockerfile::DockerIgnore::parse(&read(".dockerignore"));
    let mut copies = 0;
    for (i, (op, args)) in ins.iter().enumerate() {
        if op != "COPY" && op != "ADD" {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        if let Some(from) = words.iter().find_map(|w| w.strip_prefix("--from=")) {
            let earlier: Vec<&String> = stages
                .iter()
                .zip(&names)
                .filter(|(s, _)| **s < i)
                .map(|(_, n)| n)
                .collect();
            assert!(
                earlier.iter().any(|n| n.as_str() == from),
                "COPY --from={from} names no earlier stage"
            );
            continue;
        }
        let paths: Vec<&&str> = words.iter().filter(|w| !w.starts_with("--")).collect();
        let (_, sources) = paths.split_last().expect("COPY has a destination");
        for src in sources {
            assert!(repo_path(src).exists(), "COPY source {src} does not exist");
            assert!(
                !ignored.excludes(src.trim_start_matches("./")),
                "COPY source {src} is excluded by .dockerignore"
            );
            copies += 1;
        }
    }
    assert!(copies >= 2, "only {copies} COPY sources found");
    assert!(
        ignored.excludes("target/release/lpm"),
        ".dockerignore keeps target/ out"
    );

    let last_stage = &ins[last..];
    let has = |op: &str, args: &str| last_stage.iter().any(|(o, a)| o == op && a == args);
    assert!(has("ENTRYPOINT", r#"["lpm"]"#), "ENTRYPOINT [\"lpm\"]");
    assert!(has("EXPOSE", &lpm_port(&compose()).to_string()));
    assert!(
        text.contains("cargo build --release") && text.contains("--bin lpm"),
        "the builder builds the lpm binary in release mode"
    );
}

#[test]
fn deploy_scripts_are_valid_posix_sh() {
    for script in [
        "deploy/debezium/register.sh",
        "deploy/mysql/init/01-lpm-users.sh",
    ] {
        let out = Command::new("sh")
            .args(["-n", &repo_path(script).to_string_lossy()])
            .output()
            .expect("running sh -n");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn docker_compose_config_is_valid() {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !plugin {
        // Straight to the stderr handle, not eprintln!: libtest captures the macros' output of
        // passing tests, and this must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n==================================================================\n\
             NOT RUN: `docker compose config -q` (no `docker compose` plugin on\n\
             this machine). docker-compose.yml was checked by parsing only.\n\
             =================================================================="
        );
        return;
    }
    let out = Command::new("docker")
        .current_dir(root())
        .args([
            "compose",
            "-f",
            "docker-compose.yml",
            "--env-file",
            ENV_EXAMPLE,
            "config",
            "-q",
        ])
        .output()
        .expect("running docker compose config");
    assert!(
        out.status.success(),
        "docker compose config -q: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn var_refs_and_interpolation_follow_compose() {
    let refs = var_refs("a ${A:-x} ${B-y} ${C} $D $$E ${F:?no}").expect("valid");
    let got: Vec<(&str, Option<&str>)> = refs
        .iter()
        .map(|r| (r.name.as_str(), r.default.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("A", Some("x")),
            ("B", Some("y")),
            ("C", None),
            ("D", None),
            ("F", None)
        ]
    );
    assert!(var_refs("cost $5").is_err());
    let env: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
    assert_eq!(interpolate("${A:-9}:${B:-8}:$$x", &env), "1:8:$x");
}

/// A fake Kafka Connect on loopback: answers 503 once, then serves the plugin list, records
/// the PUT, and reports the connector RUNNING before its task is.
fn fake_connect(listener: std::net::TcpListener) -> Vec<(String, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut seen = Vec::new();
    let mut status_calls = 0;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { break };
        let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let request: Vec<&str> = line.split_whitespace().take(2).collect();
        let request = request.join(" ");
        seen.push((request.clone(), String::from_utf8_lossy(&body).into_owned()));
        let (code, reply) = match request.as_str() {
            "GET /connector-plugins" if seen.len() == 1 => ("503 Unavailable", String::new()),
            "GET /connector-plugins" => (
                "200 OK",
                r#"[{"class":"io.debezium.connector.mysql.MySqlConnector"}]"#.to_string(),
            ),
            "PUT /connectors/lost-persons-mysql/config" => ("201 Created", "{}".to_string()),
            "GET /connectors/lost-persons-mysql/status" => {
                status_calls += 1;
                let task = if status_calls == 1 {
                    "[]"
                } else {
                    r#"[{"id":0,"state":"RUNNING"}]"#
                };
                (
                    "200 OK",
                    format!(r#"{{"connector":{{"state":"RUNNING"}},"tasks":{task}}}"#),
                )
            }
            _ => ("404 Not Found", String::new()),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        );
        if status_calls == 2 {
            break;
        }
    }
    seen
}

#[test]
fn register_script_puts_the_connector_and_waits_for_running() {
    assert!(
        Command::new("curl").arg("--version").output().is_ok(),
        "register.sh needs curl: install it (apt-get install curl)"
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let server = std::thread::spawn(move || fake_connect(listener));
    let out = Command::new("sh")
        .arg(repo_path("deploy/debezium/register.sh"))
        .env("CONNECT_URL", format!("http://127.0.0.1:{port}"))
        .env("CONNECTOR_CONFIG", repo_path(CONNECTOR_JSON))
        .env("REGISTER_TRIES", "5")
        .output()
        .expect("running register.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "register.sh failed: {stderr}");
    let seen = server.join().expect("fake Connect thread");
    let requests: Vec<&str> = seen.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        requests,
        [
            "GET /connector-plugins",
            "GET /connector-plugins",
            "PUT /connectors/lost-persons-mysql/config",
            "GET /connectors/lost-persons-mysql/status",
            "GET /connectors/lost-persons-mysql/status",
        ],
        "{stderr}"
    );
    let sent: Value = serde_json::from_str(&seen[2].1).expect("the PUT body is JSON");
    assert_eq!(
        sent,
        Value::Object(connector()),
        "the PUT body is the repo's JSON"
    );
}
