//! The dictionaries are complete: Spanish and English have the same keys, every key the
//! markup and scripts use exists, and every status, priority, gender and action word the API
//! can send has a translation.

use std::collections::BTreeSet;

use lpm_engine::model::{Priority, Status};
use lpm_engine::views::{AgeBand, Gender};
use serde_json::{Map, Value};

use super::ASSETS;

fn text(name: &str) -> &'static str {
    let a = ASSETS
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("asset {name} is embedded"));
    std::str::from_utf8(a.body).expect("assets are UTF-8")
}

/// Both dictionaries, parsed from the JSON between the markers in `i18n.js`.
fn messages() -> Map<String, Value> {
    let js = text("i18n.js");
    let start = js.find("/* BEGIN MESSAGES */").expect("BEGIN marker") + 20;
    let end = js.find("/* END MESSAGES */").expect("END marker");
    let body = js[start..end].trim().trim_end_matches(';');
    match serde_json::from_str(body).expect("the messages are strict JSON") {
        Value::Object(m) => m,
        other => panic!("messages are an object, not {other}"),
    }
}

fn keys(lang: &str) -> BTreeSet<String> {
    let m = messages();
    let dict = m
        .get(lang)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("a {lang} dictionary"));
    for (k, v) in dict {
        assert!(
            v.as_str().is_some_and(|s| !s.trim().is_empty()),
            "{lang}.{k} is a non-empty string"
        );
    }
    dict.keys().cloned().collect()
}

/// Keys used literally in `text` after each `marker` (`data-i18n="k"`, `data-i18n-aria-label:
/// 'k'`, `t('k')`), and the prefixes of keys built by concatenation (`t('status.' + s)`).
fn used(text: &str, marker: &str) -> (Vec<String>, Vec<String>) {
    let (mut literal, mut prefixes) = (Vec::new(), Vec::new());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + marker.len()..];
        if marker == "t(" && before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            continue; // `split(`, `obj.t(`: not the translate function
        }
        let s = if marker == "t(" {
            rest.trim_start()
        } else {
            // `data-i18n-aria-label` then `="k"` (HTML) or `': 'k'` (a JS object key)
            let s = rest.trim_start_matches(|c: char| c.is_ascii_lowercase() || c == '-');
            let s = s.trim_start_matches(['"', '\'']).trim_start();
            s.strip_prefix([':', '=']).unwrap_or(s).trim_start()
        };
        let Some(quote) = s.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue; // a computed key, checked through the enum lists below
        };
        let Some(close) = s[1..].find(quote) else {
            continue;
        };
        let key = s[1..1 + close].to_string();
        if s[close + 2..].trim_start().starts_with('+') {
            prefixes.push(key);
        } else {
            literal.push(key);
        }
    }
    (literal, prefixes)
}

#[test]
fn spanish_and_english_have_the_same_keys() {
    let (es, en) = (keys("es"), keys("en"));
    let only_es: Vec<_> = es.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&es).collect();
    assert!(
        only_es.is_empty() && only_en.is_empty(),
        "only in es: {only_es:?}; only in en: {only_en:?}"
    );
    assert!(
        es.len() > 100,
        "every label is translated ({} keys)",
        es.len()
    );
}

#[test]
fn every_key_the_assets_use_exists() {
    let es = keys("es");
    let mut checked = 0;
    for a in ASSETS
        .iter()
        .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
    {
        let body = text(a.name);
        for marker in ["data-i18n", "t("] {
            let (literal, prefixes) = used(body, marker);
            for k in &literal {
                assert!(es.contains(k), "{} uses the unknown key {k:?}", a.name);
            }
            for p in &prefixes {
                assert!(
                    es.iter().any(|k| k.starts_with(p.as_str())),
                    "{} builds keys from {p:?} but none exist",
                    a.name
                );
            }
            checked += literal.len();
        }
    }
    assert!(checked > 100, "the scan found the keys ({checked})");
}

#[test]
fn every_enum_word_is_translated() {
    let es = keys("es");
    let mut want: Vec<String> = Vec::new();
    want.extend(
        Status::KNOWN
            .iter()
            .map(|s| format!("status.{}", s.as_str())),
    );
    want.extend(
        Priority::KNOWN
            .iter()
            .map(|p| format!("priority.{}", p.as_str())),
    );
    want.extend(Gender::ALL.iter().map(|g| format!("gender.{}", g.label())));
    want.extend(
        AgeBand::ALL
            .iter()
            .map(|b| format!("age_band.{}", b.label())),
    );
    for a in [
        "note",
        "search",
        "call",
        "sighting",
        "status_change",
        "assignment",
    ] {
        want.push(format!("action.{a}"));
    }
    for k in &want {
        assert!(es.contains(k), "missing translation {k}");
    }
}

/// The UI translates every error code the API can send (`errorMessage` in i18n.js), in both
/// languages; a new code without a text would show the server's English.
#[test]
fn every_api_error_code_is_translated() {
    let (es, en) = (keys("es"), keys("en"));
    for code in crate::error::ErrorCode::ALL {
        let word = serde_json::to_value(code).expect("a code serializes");
        let key = format!("api_error.{}", word.as_str().expect("a code is a string"));
        assert!(
            es.contains(&key) && en.contains(&key),
            "missing translation {key}"
        );
    }
}

#[test]
fn the_scanner_finds_literal_and_built_keys() {
    let (lit, pre) = used(
        r#"<b data-i18n="a.b"></b> h('i', {'data-i18n-aria-label': 'c.d'}) x.split('q') t('e.f') t('status.' + s)"#,
        "data-i18n",
    );
    assert_eq!(lit, ["a.b", "c.d"]);
    assert!(pre.is_empty());
    let (lit, pre) = used(r#"x.split('q') t('e.f') t('status.' + s)"#, "t(");
    assert_eq!(lit, ["e.f"]);
    assert_eq!(pre, ["status."]);
}

/// Every quoted dotted literal whose first part is a dictionary namespace (`'case.status'`,
/// passed to helpers such as `field(name, labelKey, ..)`) is a key, or a prefix of keys.
#[test]
fn every_key_like_literal_in_a_known_namespace_exists() {
    let es = keys("es");
    let spaces: BTreeSet<&str> = es.iter().filter_map(|k| k.split('.').next()).collect();
    let mut checked = 0;
    for a in ASSETS
        .iter()
        .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
    {
        for quoted in text(a.name).split(['\'', '"']).skip(1).step_by(2) {
            let Some((space, rest)) = quoted.split_once('.') else {
                continue;
            };
            let shaped = !rest.is_empty()
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-+".contains(c));
            if !shaped || !spaces.contains(space) {
                continue;
            }
            checked += 1;
            if quoted.ends_with('.') {
                assert!(
                    es.iter().any(|k| k.starts_with(quoted)),
                    "{}: no key starts with {quoted:?}",
                    a.name
                );
            } else {
                assert!(es.contains(quoted), "{}: unknown key {quoted:?}", a.name);
            }
        }
    }
    assert!(checked > 150, "the scan found the keys ({checked})");
}
