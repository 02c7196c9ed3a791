//! `GET /runbook`: the SRE runbook (`docs/runbook.md`) compiled into the binary and served as
//! HTML, so every alert's `runbook_url` (`<runbook_base_url>#<alert name, lower-case>`,
//! `deploy/prometheus/rules.yml`) has a target that matches the running version, with no wiki
//! to keep in step. No sign-in: the runbook is public documentation.
//!
//! Headings get GitHub's anchors (lower-case, spaces to `-`, other punctuation dropped), the
//! same ids the rules link to and that a copy of the repository on a forge would have; that way
//! an operator can point `LPM_RUNBOOK_BASE_URL` at either. While lpm itself is down its own copy
//! is unreachable; docs/deploy.md says so and the `LpmDown` alert's description carries the
//! first step.

use std::collections::HashSet;
use std::sync::LazyLock;

use axum::http::{header, HeaderName};
use axum::response::IntoResponse;
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::CSP;

/// The runbook's Markdown source.
const SOURCE: &str = include_str!("../../../docs/runbook.md");

/// The page, rendered once.
static PAGE: LazyLock<String> = LazyLock::new(|| page(SOURCE));

/// The headers of the page: the UI's CSP (no script at all here) and no framing.
const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "no-cache"),
];

pub(super) async fn runbook() -> impl IntoResponse {
    (HEADERS, PAGE.as_str())
}

/// GitHub's heading anchor of `text`.
pub fn anchor(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The whole HTML document for `markdown`.
fn page(markdown: &str) -> String {
    let mut body = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut body, with_anchors(markdown).into_iter());
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>lpm runbook</title><link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body><main class=\"runbook\">\n{body}</main></body></html>\n"
    )
}

/// The Markdown's events with an `id` on every heading (a repeated anchor gets `-1`, `-2`, ...
/// as on GitHub).
fn with_anchors(markdown: &str) -> Vec<Event<'_>> {
    let mut events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let mut seen = HashSet::new();
    let mut i = 0;
    while i < events.len() {
        if let Event::Start(Tag::Heading { level, .. }) = &events[i] {
            let level: HeadingLevel = *level;
            let mut text = String::new();
            for e in &events[i + 1..] {
                match e {
                    Event::End(TagEnd::Heading(_)) => break,
                    Event::Text(t) | Event::Code(t) => text.push_str(t),
                    _ => {}
                }
            }
            let base = anchor(&text);
            let mut id = base.clone();
            let mut n = 0;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{base}-{n}");
            }
            events[i] = Event::Start(Tag::Heading {
                level,
                id: Some(CowStr::from(id)),
                classes: Vec::new(),
                attrs: Vec::new(),
            });
        }
        i += 1;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("LpmDown"), "lpmdown");
        assert_eq!(anchor("Start and stop"), "start-and-stop");
        assert_eq!(
            anchor("`lpm_ready` is 0 (NotReady)"),
            "lpm_ready-is-0-notready"
        );
    }

    #[test]
    fn every_heading_gets_a_unique_id() {
        let html = page("# A\n\n## Same\n\ntext\n\n## Same\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<h1 id=\"a\">A</h1>"), "{html}");
        assert!(html.contains("<h2 id=\"same\">Same</h2>"), "{html}");
        assert!(html.contains("<h2 id=\"same-1\">Same</h2>"), "{html}");
        assert!(html.contains("<table>"), "tables render: {html}");
    }

    #[test]
    fn the_embedded_runbook_has_the_alert_sections() {
        for id in ["lpmdown", "lpmnotready", "lpmcheckpointstale", "backup"] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
    }
}
