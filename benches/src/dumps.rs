//! Benchmark dumps: generated once per parameter set and cached under `target/bench-data/`.
//!
//! The shared Python generator (`../shared/bench/gen_changelog.py`, or `$LPM_SHARED/bench`) is
//! preferred, because it is the reference the oracle was validated against; without it the
//! Rust generator of `lpm-testkit` writes the dump. `LPM_BENCH_GEN=shared|testkit` forces one.
// each bench target that includes this module uses a part of it
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The seed of every benchmark dump.
pub const SEED: u64 = 7;

/// A generated dump on disk.
#[derive(Clone, Debug)]
pub struct Dump {
    /// `changelog.jsonl`.
    pub path: PathBuf,
    /// Persons the generator simulated.
    pub persons: usize,
    /// Whether records carry JsonConverter schemas.
    pub schemas: bool,
    /// Lines (Kafka records).
    pub records: u64,
    /// File size.
    pub bytes: u64,
    /// Which generator wrote it.
    pub generator: &'static str,
}

impl Dump {
    /// Short label for the table, e.g. `100k no-schemas`.
    pub fn label(&self) -> String {
        let p = if self.persons >= 1000 && self.persons.is_multiple_of(1000) {
            format!("{}k", self.persons / 1000)
        } else {
            self.persons.to_string()
        };
        format!(
            "{p} {}",
            if self.schemas {
                "schemas"
            } else {
                "no-schemas"
            }
        )
    }
}

/// Which generator to use.
#[derive(Clone, Debug)]
pub enum Generator {
    /// `gen_changelog.py` in this directory.
    Shared(PathBuf),
    /// `lpm_testkit::gen`.
    Testkit,
}

impl Generator {
    /// Picks the generator: `LPM_BENCH_GEN`, else the shared one if present, else testkit.
    pub fn pick(workspace: &Path) -> Generator {
        let shared = std::env::var_os("LPM_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("../shared"))
            .join("bench");
        let script = shared.join("gen_changelog.py");
        match std::env::var("LPM_BENCH_GEN").as_deref() {
            Ok("testkit") => Generator::Testkit,
            _ if script.is_file() => Generator::Shared(shared),
            _ => Generator::Testkit,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Generator::Shared(_) => "shared",
            Generator::Testkit => "testkit",
        }
    }
}

/// Returns the cached dump for these parameters, generating it first if needed.
pub fn ensure(
    data_dir: &Path,
    generator: &Generator,
    persons: usize,
    schemas: bool,
) -> Result<Dump, String> {
    let name = format!(
        "{}-p{persons}-{}-seed{SEED}",
        generator.name(),
        if schemas { "schemas" } else { "noschemas" }
    );
    let dir = data_dir.join(&name);
    let done = dir.join(".complete");
    let path = dir.join("changelog.jsonl");
    if !done.is_file() || !path.is_file() {
        let partial = data_dir.join(format!("{name}.partial"));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial).map_err(|e| format!("creating {}: {e}", partial.display()))?;
        eprintln!(
            "bench: generating {name} ({} generator) ...",
            generator.name()
        );
        let started = Instant::now();
        match generator {
            Generator::Shared(dir) => generate_shared(dir, &partial, persons, schemas)?,
            Generator::Testkit => generate_testkit(&partial, persons, schemas)?,
        }
        let records = count_lines(&partial.join("changelog.jsonl"))?;
        fs::write(partial.join(".complete"), format!("{records}\n"))
            .map_err(|e| format!("writing the completion marker: {e}"))?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&partial, &dir).map_err(|e| format!("renaming {}: {e}", partial.display()))?;
        eprintln!(
            "bench: generated {name}: {records} records in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let records = fs::read_to_string(&done)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map_or_else(|| count_lines(&path), Ok)?;
    let bytes = fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok(Dump {
        path,
        persons,
        schemas,
        records,
        bytes,
        generator: generator.name(),
    })
}

fn generate_shared(shared: &Path, out: &Path, persons: usize, schemas: bool) -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.arg(shared.join("gen_changelog.py"))
        .arg("--persons")
        .arg(persons.to_string())
        .arg("--out")
        .arg(out)
        .arg("--seed")
        .arg(SEED.to_string());
    if !schemas {
        cmd.arg("--no-schemas");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running python3 gen_changelog.py: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gen_changelog.py failed: {status}"))
    }
}

fn generate_testkit(out: &Path, persons: usize, schemas: bool) -> Result<(), String> {
    use lpm_testkit::gen::{generate, GenOptions};
    let path = out.join("changelog.jsonl");
    let file = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let opts = GenOptions {
        persons,
        seed: SEED,
        schemas,
        ..GenOptions::default()
    };
    generate(&opts, &mut w).map_err(|e| format!("lpm_testkit::gen::generate: {e}"))?;
    w.flush()
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn count_lines(path: &Path) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut n = 0;
    loop {
        let buf = r
            .fill_buf()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
}
