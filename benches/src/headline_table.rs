//! The headline table (`cargo bench -p lpm-benches --bench headline`): one markdown row per
//! figure, and the block of `docs/performance.md` between [`START`] and [`END`] that holds the
//! latest one. Pure text, so it is unit-tested without running a benchmark.

use std::fmt::Write as _;

/// The marker before the generated block in `docs/performance.md`.
pub const START: &str = "<!-- headline:start -->";
/// The marker after it.
pub const END: &str = "<!-- headline:end -->";

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    /// The median, formatted with its unit; `Err(why)` when it was not measured, so the table
    /// shows a dash and the reason instead of a zero.
    pub value: Result<String, String>,
    /// The goal, e.g. `≤ 5 ms`; empty when the issue sets none.
    pub goal: String,
    /// Whether the value meets the goal; `None` without a goal or a value.
    pub met: Option<bool>,
    /// The baseline or floor measured in the same run, with what it is; empty when none.
    pub baseline: String,
    /// The value against the baseline; empty when none.
    pub ratio: String,
    /// How the median was taken (which runs).
    pub runs: String,
}

/// Escapes what would break a markdown table cell.
fn cell(s: &str) -> String {
    let s = s.trim().replace('|', "\\|").replace('\n', " ");
    if s.is_empty() {
        "—".into()
    } else {
        s
    }
}

/// The markdown table of `rows`.
pub fn render_table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| figure | value (median) | goal (issue 21) | baseline / floor, same run | ratio | runs |"
    );
    let _ = writeln!(s, "| --- | ---: | --- | ---: | ---: | --- |");
    for r in rows {
        let value = match &r.value {
            Ok(v) => cell(v),
            Err(why) => format!("— ({})", cell(why)),
        };
        let goal = match (r.goal.trim().is_empty(), r.met) {
            (true, _) => "—".to_string(),
            (false, Some(true)) => format!("{}: met", cell(&r.goal)),
            (false, Some(false)) => format!("{}: **missed**", cell(&r.goal)),
            (false, None) => cell(&r.goal),
        };
        let _ = writeln!(
            s,
            "| {} | {value} | {goal} | {} | {} | {} |",
            cell(&r.figure),
            cell(&r.baseline),
            cell(&r.ratio),
            cell(&r.runs)
        );
    }
    s
}

/// `doc` with the text between [`START`] and [`END`] replaced by `block`; a `doc` without both
/// markers (in that order) keeps its text and gets the block, between markers, at its end, so a
/// hand-edited page never loses its prose.
pub fn replace_between_markers(doc: &str, block: &str) -> String {
    let inner = format!("{START}\n{}\n{END}", block.trim_end());
    if let Some(s) = doc.find(START) {
        if let Some(e) = doc[s..].find(END) {
            let end = s + e + END.len();
            return format!("{}{inner}{}", &doc[..s], &doc[end..]);
        }
    }
    if doc.trim().is_empty() {
        format!("{inner}\n")
    } else {
        format!("{}\n\n{inner}\n", doc.trim_end())
    }
}

/// Whether a load average reading (`"1.5 1.2 0.9"`) shows the machine busy: its 1-minute value
/// at or above half the cores, a sign that something else was running beside the bench.
pub fn busy(load: &str, cores: usize) -> bool {
    load.split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| cores > 0 && l >= cores as f64 / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(figure: &str, value: Result<&str, &str>, goal: &str, met: Option<bool>) -> Row {
        Row {
            figure: figure.into(),
            value: value.map(String::from).map_err(String::from),
            goal: goal.into(),
            met,
            baseline: "2.00 ms (facts)".into(),
            ratio: String::new(),
            runs: "median of 3 `serve` runs".into(),
        }
    }

    #[test]
    fn a_table_shows_met_missed_and_a_missing_figure_as_a_dash_with_its_reason() {
        let t = render_table(&[
            row("Grafana p99, 1M", Ok("4.10 ms"), "≤ 5 ms", Some(true)),
            row("writes/s, 500 clients", Ok("512"), "≥ 990", Some(false)),
            row(
                "restart, 1M",
                Err("the serve bench failed: a | b"),
                "",
                None,
            ),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("| figure | value (median) |"));
        assert!(lines[2].contains("| 4.10 ms | ≤ 5 ms: met |"), "{t}");
        assert!(lines[3].contains("| 512 | ≥ 990: **missed** |"), "{t}");
        // the missing figure: a dash and why (its `|` escaped), no goal, no zero
        assert!(
            lines[4].contains("| — (the serve bench failed: a \\| b) | — |"),
            "{t}"
        );
        assert!(!lines[4].contains(" 0 "), "{t}");
        // an empty ratio is a dash
        assert!(lines[2].contains("| 2.00 ms (facts) | — |"), "{t}");
    }

    #[test]
    fn the_block_between_the_markers_is_replaced_and_the_rest_kept() {
        let doc = format!("# Performance\n\nintro\n\n{START}\nold table\n{END}\n\n## Goals\n");
        let new = replace_between_markers(&doc, "new table\n");
        assert_eq!(
            new,
            format!("# Performance\n\nintro\n\n{START}\nnew table\n{END}\n\n## Goals\n")
        );
        // again: idempotent with the same block
        assert_eq!(replace_between_markers(&new, "new table"), new);
    }

    #[test]
    fn a_page_without_markers_gets_the_block_appended() {
        let new = replace_between_markers("# Performance\n\nprose\n", "t");
        assert_eq!(
            new,
            format!("# Performance\n\nprose\n\n{START}\nt\n{END}\n")
        );
        assert_eq!(
            replace_between_markers("", "t"),
            format!("{START}\nt\n{END}\n")
        );
        // an end marker before the start marker is not a block
        let odd = format!("{END}\n{START}\n");
        assert!(replace_between_markers(&odd, "t").ends_with(&format!("{START}\nt\n{END}\n")));
    }

    #[test]
    fn busy_reads_the_one_minute_load() {
        assert!(busy("1.20 0.50 0.20", 2));
        assert!(!busy("0.30 2.50 2.20", 2));
        assert!(!busy("unknown", 2));
    }
}
