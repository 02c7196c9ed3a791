//! Grafana polling like a dashboard wall (the soak bench): every panel of the two analyst
//! dashboards in `dashboards/analysts/` (Infinity rows through `POST /api/v1/rows/{view}`,
//! simpod through `POST /grafana/query`), refreshed every few seconds over the last 7 days
//! with the dashboards' default variables, read with the read-only token Grafana uses.
//!
//! The requests are built from the dashboard files themselves, so the wall follows the
//! dashboards as they change. Interpolation covers what those files use: `${__from}`,
//! `${__to}`, `${var}`, `${var:csv}` and `$var`, where a variable is its `current` value and
//! "All" is the variable's `allValue` (as Grafana sends it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_http::{grafana_body, ms, trim, Client};

const INFINITY: &str = "yesoreyeram-infinity-datasource";
const SIMPOD: &str = "simpod-json-datasource";

/// One panel's request.
#[derive(Clone, Debug)]
pub struct Panel {
    pub dashboard: String,
    pub title: String,
    pub path: String,
    query: Query,
}

#[derive(Clone, Debug)]
enum Query {
    /// The Infinity body template (the target's `url_options.data`).
    Rows(String),
    /// The panel's simpod targets (one `/grafana/query` per panel, as Grafana sends them).
    Simpod(Vec<Value>),
}

/// Variable name -> the text it stands for.
pub type Vars = Vec<(String, String)>;

fn default_vars(dashboard: &Value) -> Vars {
    let mut vars = Vec::new();
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(name) = v["name"].as_str() else {
            continue;
        };
        let all = v["allValue"].as_str().unwrap_or("").to_string();
        let current = &v["current"]["value"];
        let text = match current {
            Value::String(s) if s == "$__all" => all,
            Value::String(s) => s.clone(),
            Value::Array(a) if a.iter().any(|x| x == "$__all") => all,
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        vars.push((name.to_string(), text));
    }
    // longest names first, so `$tz` never eats the start of a longer `$tzx`
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    vars
}

fn interpolate(text: &str, vars: &Vars, from_ms: i64, to_ms: i64) -> String {
    let mut s = text
        .replace("${__from}", &from_ms.to_string())
        .replace("${__to}", &to_ms.to_string());
    for (name, value) in vars {
        s = s
            .replace(&format!("${{{name}:csv}}"), value)
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    s
}

/// The panels of every dashboard under `dir`, with their dashboard's default variables.
pub fn load(dir: &Path) -> Result<Vec<(Panel, Vars)>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut panels = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let dashboard = doc["title"].as_str().unwrap_or("?").to_string();
        let vars = default_vars(&doc);
        for p in doc["panels"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            let targets: Vec<&Value> = p["targets"].as_array().into_iter().flatten().collect();
            let ds = |t: &Value| {
                t["datasource"]["type"]
                    .as_str()
                    .or(p["datasource"]["type"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let simpod: Vec<Value> = targets
                .iter()
                .filter(|t| ds(t) == SIMPOD)
                .map(|t| (*t).clone())
                .collect();
            if !simpod.is_empty() {
                let panel = Panel {
                    dashboard: dashboard.clone(),
                    title: title.clone(),
                    path: "/grafana/query".into(),
                    query: Query::Simpod(simpod),
                };
                panels.push((panel, vars.clone()));
            }
            for t in targets.iter().filter(|t| ds(t) == INFINITY) {
                let (Some(url), Some(data)) =
                    (t["url"].as_str(), t["url_options"]["data"].as_str())
                else {
                    return Err(format!(
                        "{dashboard} / {title}: an Infinity target without url or body"
                    ));
                };
                let panel = Panel {
                    dashboard: dashboard.clone(),
                    title: title.clone(),
                    path: url.to_string(),
                    query: Query::Rows(data.to_string()),
                };
                panels.push((panel, vars.clone()));
            }
        }
    }
    if panels.is_empty() {
        return Err(format!(
            "no Infinity or simpod panels under {}",
            dir.display()
        ));
    }
    Ok(panels)
}

impl Panel {
    /// The request body over `[from_ms, to_ms]`.
    fn body(&self, vars: &Vars, from_ms: i64, to_ms: i64) -> String {
        match &self.query {
            Query::Rows(template) => interpolate(template, vars, from_ms, to_ms),
            Query::Simpod(targets) => {
                let targets = interpolate(&Value::from(targets.clone()).to_string(), vars, 0, 0);
                let targets = serde_json::from_str(&targets).unwrap_or(Value::Null);
                grafana_body(from_ms, to_ms, targets)
            }
        }
    }

    /// `rows` or `grafana/query`: the two kinds reported apart.
    pub fn kind(&self) -> &'static str {
        match self.query {
            Query::Rows(_) => "rows",
            Query::Simpod(_) => "grafana/query",
        }
    }
}

/// One panel request: when (seconds since the epoch of the run), which panel, how long, and
/// the error if it failed (non-200, transport, or an answer that is not a JSON array).
#[derive(Clone, Debug)]
pub struct Poll {
    pub at_s: f64,
    pub panel: usize,
    pub ms: f64,
    pub error: Option<String>,
}

/// The wall: one thread per dashboard, as each dashboard is its own browser tab.
pub struct Wall {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Poll>>>,
}

impl Wall {
    /// Starts refreshing `panels` (from [`load`]) every `every`; a panel's index in `panels`
    /// is its `Poll::panel`.
    pub fn start(
        client: &Client,
        panels: Vec<(Panel, Vars)>,
        every: Duration,
        epoch: Instant,
    ) -> std::io::Result<Wall> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut groups: Vec<(usize, Vec<(Panel, Vars)>)> = Vec::new();
        for (i, p) in panels.into_iter().enumerate() {
            match groups.last_mut() {
                Some((_, g)) if g.first().is_some_and(|q| q.0.dashboard == p.0.dashboard) => {
                    g.push(p)
                }
                _ => groups.push((i, vec![p])),
            }
        }
        let mut threads = Vec::new();
        for (offset, group) in groups {
            let (client, stop) = (client.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("soak-wall".into())
                    .spawn(move || run(client, group, offset, every, stop, epoch))?,
            );
        }
        Ok(Wall { stop, threads })
    }

    /// Stops after the requests under way; returns every request, in time order.
    pub fn stop(self) -> Vec<Poll> {
        self.stop.store(true, Ordering::Relaxed);
        let mut polls: Vec<Poll> = self
            .threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .flatten()
            .collect();
        polls.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        polls
    }
}

/// Refreshes `panels` every `every` until `stop`: each refresh sends every panel once, in
/// order, over the 7 days ending now. Returns every request.
fn run(
    client: Client,
    panels: Vec<(Panel, Vars)>,
    offset: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> Vec<Poll> {
    let mut polls = Vec::new();
    let start = Instant::now();
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let to_ms = chrono::Utc::now().timestamp_millis();
        let from_ms = to_ms - 7 * 86_400_000;
        for (i, (panel, vars)) in panels.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let body = panel.body(vars, from_ms, to_ms);
            let t = Instant::now();
            let error = match client.send("POST", &panel.path, &body) {
                Ok(r) if r.status != 200 => Some(format!("HTTP {}: {}", r.status, trim(&r.body))),
                Ok(r) => match serde_json::from_str::<Value>(&r.body) {
                    Ok(Value::Array(_)) => None,
                    Ok(_) => Some("answer is not a JSON array".to_string()),
                    Err(e) => Some(format!("answer is not JSON: {e}")),
                },
                Err(e) => Some(format!("transport: {e}")),
            };
            polls.push(Poll {
                at_s: t.duration_since(epoch).as_secs_f64(),
                panel: offset + i,
                ms: ms(t.elapsed()),
                error,
            });
        }
        round += 1;
        let next = start + every * round;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200)),
            );
        }
    }
    polls
}
