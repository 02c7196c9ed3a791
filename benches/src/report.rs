//! Report helpers shared by every bench target: settings from the environment, medians,
//! number formatting, CPU time, and replacing one section of `target/bench-results.md`.
// each bench target compiles this module and uses a different subset of it
#![allow(dead_code)]

/// A count from the environment (`100_000` accepted), or `default` with a note when unset or bad.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.trim().replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("bench: ignoring {name}={v:?} (not a number); using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// A number from the environment (`1.5`, `100_000`), or `default` with a note when unset or bad.
pub fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v.trim().replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("bench: ignoring {name}={v:?} (not a number); using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// The least-squares slope of `y` over `x` (`None` with fewer than two distinct `x`).
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The median of the finite values, `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// CPU time (user + system) of this process, in seconds (at the usual 100 ticks a second).
pub fn cpu_seconds() -> f64 {
    process_cpu_seconds("self")
}

/// CPU time (user + system) of process `pid` (a number or `self`), in seconds; NaN when it is
/// gone.
pub fn process_cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14 and 15 of stat; `rest` starts at field 3
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// A `/proc/<pid>/status` size such as `VmRSS:` or `VmHWM:` of process `pid` (a number or
/// `self`), in bytes; 0 when it is gone.
pub fn proc_status(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The workspace root and its target directory (`CARGO_TARGET_DIR` when set).
pub fn workspace_and_target() -> (std::path::PathBuf, std::path::PathBuf) {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    (workspace, target)
}

/// The cores this process may use.
pub fn cores() -> String {
    std::thread::available_parallelism().map_or_else(|_| "unknown".into(), |n| n.to_string())
}

/// A data set's size in persons as the reports name it: `10000` as `10k`, `1000000` as `1M`.
pub fn size_label(persons: usize) -> String {
    if persons >= 1_000_000 && persons.is_multiple_of(1_000_000) {
        format!("{}M", persons / 1_000_000)
    } else if persons >= 1000 && persons.is_multiple_of(1000) {
        format!("{}k", persons / 1000)
    } else {
        persons.to_string()
    }
}

/// Two decimals below 10, one above; a dash for NaN.
pub fn f2(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// `old` with its `## <name>` section replaced by `section` (appended when there is none).
pub fn replace_section(old: &str, name: &str, section: &str) -> String {
    let section = section.trim_end();
    let heading = format!("## {name}\n");
    let start = if old.starts_with(&heading) {
        Some(0)
    } else {
        old.find(&format!("\n{heading}")).map(|i| i + 1)
    };
    match start {
        Some(s) => {
            let end = old[s + 1..]
                .find("\n## ")
                .map_or(old.len(), |i| s + 1 + i + 1);
            let rest = &old[end..];
            let mut out = format!("{}{section}\n", &old[..s]);
            if !rest.is_empty() {
                out.push('\n');
                out.push_str(rest);
            }
            out
        }
        None if old.trim().is_empty() => format!("{section}\n"),
        None => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

/// Quantiles of latency samples in milliseconds, through an HdrHistogram (3 significant
/// digits, nanosecond units, so a 0.1 ms answer keeps its digits) instead of a hand-rolled
/// sort-and-rank. Samples are shifted by the smallest one before recording, so negative ones
/// (the capture bench's "stored before the OK") fit the histogram's unsigned values; NaN and
/// infinities are dropped. `None` without a finite sample.
pub struct Quantiles {
    hist: hdrhistogram::Histogram<u64>,
    /// The smallest sample (ms): the histogram's zero.
    min: f64,
}

impl Quantiles {
    pub fn of(samples: &[f64]) -> Option<Quantiles> {
        let min = samples
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .min_by(f64::total_cmp)?;
        let mut hist = hdrhistogram::Histogram::<u64>::new(3).ok()?;
        for x in samples.iter().filter(|x| x.is_finite()) {
            // auto-resizing: recording cannot fail for a finite, non-negative value
            let _ = hist.record(((x - min) * 1e6).round() as u64);
        }
        Some(Quantiles { hist, min })
    }

    /// The value at quantile `q` (0.5 = p50), in ms, within 0.1% of the sample it stands for.
    pub fn at(&self, q: f64) -> f64 {
        self.min + self.hist.value_at_quantile(q) as f64 / 1e6
    }

    /// How many samples were recorded.
    pub fn len(&self) -> usize {
        self.hist.len() as usize
    }
}

/// Total size of the regular files directly in `dir` (a log directory's segments); 0 if it
/// cannot be read.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
