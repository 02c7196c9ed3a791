//! Alert delivery with real processes: the repo's Prometheus config and rules, Debian's
//! Prometheus and Alertmanager, and a local webhook receiver standing in for the chat service.
//!
//! - `amtool check-config` accepts `deploy/alertmanager/alertmanager.yml`.
//! - A firing `LpmDown` (Prometheus scrapes a port nobody listens on) travels Prometheus ->
//!   Alertmanager -> the default receiver, and arrives as a Slack-compatible message whose
//!   runbook link is absolute: `$LPM_RUNBOOK_BASE_URL#lpmdown`, built by the repo's
//!   `prometheus.yml` external label and the rule's annotation.
//! - Every alert's anchor is a section of the runbook lpm serves at `/runbook` (the compose
//!   stack's default base URL).
//!
//! The only edits to the repo's files are the ones a test run needs, each asserted to apply:
//! loopback addresses for the compose names, a temp path for the webhook URL file, 1 s
//! intervals, and every rule's `for:` set to `0s` so the alert fires on the first evaluation
//! instead of after 2 minutes (`rules.test.yml` tests the real durations with promtool).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::compose::{read, root, yaml};
use crate::dashboards::{free_port, tool, Killed};
use crate::serve::{wait_until, Server};

const ALERTMANAGER_CONFIG: &str = "deploy/alertmanager/alertmanager.yml";
const PROM_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RULES: &str = "deploy/prometheus/rules.yml";
/// Where the test says the runbook lives.
const BASE: &str = "http://runbook.example/lpm/runbook";

/// `text` with `from` replaced by `to`, which must occur.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is no longer in the file");
    text.replace(from, to)
}

/// A webhook receiver on loopback: answers every request 200 and keeps the bodies.
struct Receiver {
    addr: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address").to_string();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = one_request(stream) {
                    kept.lock().expect("bodies").push(body);
                }
            }
        });
        Receiver { addr, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body, answers 200, returns the body.
fn one_request(mut stream: TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let end = (head_end + length).min(buf.len());
    Some(String::from_utf8_lossy(&buf[head_end..end]).into_owned())
}

/// Spawns a server process, failing the test with its stderr if it exits early.
fn spawn(mut cmd: Command, what: &str) -> Killed {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("{what} exited at start ({status}):\n{err}");
    }
    Killed(child)
}

#[test]
fn amtool_accepts_the_alertmanager_config() {
    let out = Command::new(tool("amtool"))
        .current_dir(root())
        .args(["check-config", ALERTMANAGER_CONFIG])
        .output()
        .expect("run amtool");
    assert!(
        out.status.success(),
        "amtool check-config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Alertmanager binary: Debian names it `prometheus-alertmanager`.
fn alertmanager_binary() -> std::path::PathBuf {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    on_path("prometheus-alertmanager")
        .or_else(|| on_path("alertmanager"))
        .unwrap_or_else(|| tool("prometheus-alertmanager"))
}

fn start_alertmanager(dir: &Path, webhook: &str) -> (Killed, u16) {
    let url_file = dir.join("webhook_url");
    std::fs::write(&url_file, webhook).expect("write the webhook URL file");
    let config = read(ALERTMANAGER_CONFIG);
    let config = edit(
        &config,
        "/alertmanager/webhook_url",
        &url_file.display().to_string(),
    );
    let config = edit(&config, "group_wait: 30s", "group_wait: 1s");
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, config).expect("write the Alertmanager config");
    let port = free_port();
    let mut cmd = Command::new(alertmanager_binary());
    cmd.arg(format!("--config.file={}", path.display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=");
    (spawn(cmd, "alertmanager"), port)
}

fn start_prometheus(dir: &Path, alertmanager_port: u16) -> Killed {
    // every rule fires on its first true evaluation
    let rules: String = read(RULES)
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 0s\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(rules.contains("for: 0s"), "no `for:` left to shorten");
    std::fs::write(dir.join("rules.yml"), rules).expect("write the rules");
    let port = free_port();
    // lpm "down": a loopback port nobody listens on
    let dead = free_port();
    let config = read(PROM_CONFIG);
    let config = edit(&config, "scrape_interval: 15s", "scrape_interval: 1s");
    let config = edit(
        &config,
        "evaluation_interval: 15s",
        "evaluation_interval: 1s",
    );
    let config = edit(
        &config,
        "\"alertmanager:9093\"",
        &format!("\"127.0.0.1:{alertmanager_port}\""),
    );
    let config = edit(&config, "\"lpm:8080\"", &format!("\"127.0.0.1:{dead}\""));
    let config = edit(
        &config,
        "\"localhost:9090\"",
        &format!("\"127.0.0.1:{port}\""),
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).expect("write the Prometheus config");
    let mut cmd = Command::new(tool("prometheus"));
    cmd.arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Prometheus 3 (the compose image) expands by default; Debian's 2.x needs the flag
        .arg("--enable-feature=expand-external-labels")
        .env("LPM_RUNBOOK_BASE_URL", BASE);
    spawn(cmd, "prometheus")
}

#[test]
fn a_firing_alert_reaches_the_default_receiver_with_an_absolute_runbook_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start();
    let (_alertmanager, am_port) =
        start_alertmanager(dir.path(), &format!("http://{}/hook", receiver.addr));
    let _prometheus = start_prometheus(dir.path(), am_port);

    let link = format!("{BASE}#lpmdown");
    let message = wait_until(
        "LpmDown at the webhook receiver",
        Duration::from_secs(120),
        || {
            let bodies = receiver.bodies();
            bodies
                .iter()
                .filter_map(|b| serde_json::from_str::<Value>(b).ok())
                .find(|m| {
                    m["attachments"][0]["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("LpmDown"))
                })
                .ok_or_else(|| format!("{} messages so far: {bodies:?}", bodies.len()))
        },
    );
    let attachment = &message["attachments"][0];
    let title = attachment["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with("FIRING: LpmDown (critical)"),
        "title: {title}"
    );
    let text = attachment["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("Runbook: {link}")),
        "the message carries the absolute runbook link {link}: {text}"
    );
    assert!(text.contains("does not answer scrapes"), "summary: {text}");
    assert_eq!(message["channel"], "#lpm-alerts");
}

#[test]
fn every_alert_links_to_a_section_of_the_runbook_lpm_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), &[]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut resp = agent
        .get(format!("http://{}/runbook", server.addr))
        .call()
        .expect("GET /runbook");
    assert_eq!(resp.status().as_u16(), 200, "no sign-in needed");
    let html = resp.body_mut().read_to_string().expect("runbook body");
    let rules = yaml(RULES);
    let mut alerts = 0;
    for rule in rules["groups"][0]["rules"].as_array().expect("rules") {
        let Some(name) = rule["alert"].as_str() else {
            continue;
        };
        alerts += 1;
        let link = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        let anchor = link.rsplit('#').next().unwrap_or_default();
        assert!(
            html.contains(&format!("id=\"{anchor}\"")),
            "{name}: /runbook has no section #{anchor}"
        );
    }
    assert!(alerts >= 10, "only {alerts} alerts");
}
