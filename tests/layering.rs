//! The shape of the code (docs/architecture.md): no two modules of a crate import each other.
//! A pair that does has no direction, so neither can be understood, tested or moved without
//! the other; data is meant to flow one way. Read from the sources: every `crate::a::b` and
//! `super::x` path outside comments and `#[cfg(test)]` modules is an edge from the file's
//! module to the longest module it names; a module and its own descendants may refer to each
//! other freely (a parent re-exports its children).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

const CRATES: [&str; 8] = [
    "engine/src",
    "connectors/src",
    "service/src",
    "api/src",
    "reports/src",
    "testkit/src",
    "benches/src",
    "src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `api/src/grafana/plan.rs` -> `grafana::plan`; `mod.rs` and `lib.rs` name their folder.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its trailing test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `prefix` (`crate::` or `super::`), as its segments.
fn paths_after(code: &str, prefix: &str) -> Vec<Module> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segs: Module = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.push(segs);
    }
    out
}

fn is_within(inner: &[String], outer: &[String]) -> bool {
    inner.len() >= outer.len() && inner[..outer.len()] == *outer
}

/// Module pairs of one crate that import each other.
fn mutual_imports(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut edges: BTreeSet<(Module, Module)> = BTreeSet::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read source");
        let code = code(&text);
        let parent: Module = module[..module.len().saturating_sub(1)].to_vec();
        let mut named = paths_after(&code, "crate::");
        named.extend(paths_after(&code, "super::").into_iter().map(|p| {
            let mut full = parent.clone();
            full.extend(p);
            full
        }));
        for path in named {
            let target = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|m| modules.contains_key(m));
            if let Some(target) = target {
                if !is_within(module, &target) && !is_within(&target, module) {
                    edges.insert((module.clone(), target));
                }
            }
        }
    }
    edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| (a.join("::"), b.join("::")))
        .collect()
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for krate in CRATES {
        for (a, b) in mutual_imports(&root.join(krate)) {
            found.push(format!("{krate}: {a} <-> {b}"));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_mutual_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(
        src.join("a/mod.rs"),
        "pub mod inner;\n// crate::b in a comment is not an import\n",
    )
    .expect("write");
    std::fs::write(
        src.join("a/inner.rs"),
        "use crate::b::B;\nuse super::Other;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("b.rs"),
        "pub struct B;\nfn f(_: crate::a::inner::X) {}\n",
    )
    .expect("write");
    assert_eq!(
        mutual_imports(src),
        vec![("a::inner".to_string(), "b".to_string())]
    );
    std::fs::write(src.join("b.rs"), "pub struct B;\n").expect("write");
    assert!(mutual_imports(src).is_empty());
}
