//! The README's curl tour, run as written against `lpm serve --demo` with a trickle going: the
//! `sh` block under "## A curl tour" is extracted and executed by bash (`set -euo pipefail`),
//! so a tour that stops working (a renamed route, a field read from the wrong place, a fixed
//! date that no longer matches the demo's data) fails here. The one change made to the text:
//! `curl -s` becomes `curl -sS --fail-with-body`, so an HTTP error stops the script instead of
//! being piped on.

use std::process::Command;

use crate::serve::Server;

/// The first ```sh block after `## A curl tour` in README.md.
fn tour_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## A curl tour\n")
        .nth(1)
        .expect("README has a '## A curl tour' section");
    let start = section.find("```sh\n").expect("a sh block in the tour") + "```sh\n".len();
    let len = section[start..].find("\n```").expect("the block ends");
    section[start..start + len].to_string()
}

/// `tool` runs (`--version`), or the test stops naming it: the tour needs it.
fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the README tour needs `{tool}` (scripts/test.sh installs it: apt-get install {tool})"
    );
}

#[test]
fn the_readme_curl_tour_runs_as_written_against_the_demo() {
    for tool in ["bash", "curl", "jq", "date"] {
        require(tool);
    }
    let block = tour_block();
    assert!(block.contains("$LPM/api/v1/reports"), "{block}");
    assert!(
        !block.contains("2026-") && !block.contains("3001"),
        "no fixed dates or ids in the tour: {block}"
    );
    let script = block.replace("curl -s ", "curl -sS --fail-with-body ");
    let dir = tempfile::tempdir().expect("tempdir");
    // a trickle files reports while the tour runs: the case it works on must be its own
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--demo", "--demo-every-ms", "300"],
    );
    let out = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir.path())
        .env("LPM", format!("http://{}", server.addr))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{}",
        out.status,
        server.stderr()
    );
    // the case the tour filed, read back, moved and assigned: its own, not the trickle's
    let case: serde_json::Value = stdout
        .lines()
        .find(|l| l.starts_with("{\"id\":") && l.contains("\"status\":\"open\""))
        .map(|l| serde_json::from_str(l).expect("case JSON"))
        .unwrap_or_else(|| panic!("no case line: {stdout}"));
    assert_eq!(case["priority"], "high", "{case}");
    let id = case["id"].as_i64().expect("case id");
    // the field-work lines: the public page answered without a session, the form's post was
    // stored (303 to the thank-you), and the poster was written
    assert!(stdout.contains("public page: 200\n"), "{stdout}");
    assert!(stdout.contains("public sighting: 303\n"), "{stdout}");
    assert!(
        stdout.contains(r#"{"place":"Quito, Parque El Ejido","source":"responder"}"#),
        "{stdout}"
    );
    for pdf in [
        format!("caso-{id}.pdf"),
        format!("cartel-{id}.pdf"),
        "demographic.pdf".to_string(),
    ] {
        let bytes = std::fs::read(dir.path().join(&pdf)).expect(&pdf);
        assert!(bytes.starts_with(b"%PDF-"), "{pdf} is a PDF");
    }
    assert!(stdout.contains("\"action_type\":\"search\""), "{stdout}");
    assert!(stdout.contains("Lost Persons Monitor API"), "{stdout}");
    assert!(stdout.contains("\"ready\":true"), "{stdout}");
}
