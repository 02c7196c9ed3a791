//! `lpm serve`'s configuration file: a TOML table whose keys are the long flags with `_` for
//! `-` (`listen`, `data_dir`, `checkpoint_interval_s`, ...).
//!
//! The file does not get its own settings struct: each value becomes the default of the
//! matching clap argument before the command line is parsed, so the precedence (flags >
//! environment > file > built-in defaults) is clap's own and every setting a flag gains is
//! configurable in the file without touching this module.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml_edit::{Item, Value};

/// Read when it exists and neither `--config` nor `LPM_CONFIG` names a file.
pub const DEFAULT_PATH: &str = "lpm.toml";

/// Argument ids that are not settings: the file cannot set itself, help or version.
const NOT_SETTINGS: [&str; 3] = ["config", "help", "version"];

/// The configuration file `serve` should read: the one `--config`/`LPM_CONFIG` names (which
/// must exist: the caller reports it), else `./lpm.toml` when it exists, else none.
pub fn path_for(serve: &ArgMatches) -> Option<PathBuf> {
    if let Some(p) = serve.get_one::<PathBuf>("config") {
        return Some(p.clone());
    }
    let default = Path::new(DEFAULT_PATH);
    default.exists().then(|| default.to_path_buf())
}

/// `cmd` (the whole `lpm` command) with the settings of the file at `path` as the defaults of
/// `serve`'s arguments (and of the global `--log`, `--log-format`).
pub fn apply_file(cmd: Command, path: &Path) -> anyhow::Result<Command> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("configuration file {}", path.display()))?;
    apply(cmd, &text).with_context(|| format!("configuration file {}", path.display()))
}

/// `cmd` with the settings of the TOML `text` as argument defaults (see [`apply_file`]).
pub fn apply(mut cmd: Command, text: &str) -> anyhow::Result<Command> {
    let doc: toml_edit::Document<String> = text.parse().map_err(|e| anyhow!("{e}"))?;
    let serve = cmd
        .find_subcommand("serve")
        .context("no serve command")?
        .clone();
    for (key, item) in doc.as_table().iter() {
        let long = key.replace('_', "-");
        let (arg, global) = match find_arg(&serve, &long) {
            Some(a) => (a, false),
            None => match cmd
                .get_arguments()
                .find(|a| a.is_global_set() && has_long(a, &long))
            {
                Some(a) => (a, true),
                None => bail!("unknown key `{key}` (keys are `lpm serve` flags, `_` for `-`)"),
            },
        };
        let values = values(arg, item).with_context(|| format!("key `{key}`"))?;
        validate(arg, &values).with_context(|| format!("key `{key}`"))?;
        let id = arg.get_id().clone();
        let set = move |a: Arg| a.default_values(values);
        cmd = if global {
            cmd.mut_arg(id, set)
        } else {
            cmd.mut_subcommand("serve", |s| s.mut_arg(id, set))
        };
    }
    Ok(cmd)
}

fn has_long(arg: &Arg, long: &str) -> bool {
    arg.get_long() == Some(long)
}

fn find_arg<'a>(serve: &'a Command, long: &str) -> Option<&'a Arg> {
    serve
        .get_arguments()
        .filter(|a| !NOT_SETTINGS.contains(&a.get_id().as_str()))
        .find(|a| has_long(a, long))
}

/// Whether `arg` is an on/off flag (`--demo`), which the file sets with a boolean.
fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Whether `arg` takes several values (`--allowed-origins a,b`), which the file gives as an
/// array (or one string, split like the environment variable).
fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The file's value for `arg` as the strings clap would see on a command line.
fn values(arg: &Arg, item: &Item) -> anyhow::Result<Vec<String>> {
    let value = item
        .as_value()
        .ok_or_else(|| anyhow!("expected a value, found a table"))?;
    if is_flag(arg) {
        return match value {
            Value::Boolean(b) => Ok(vec![b.value().to_string()]),
            other => bail!("expected true or false, found {}", other.type_name()),
        };
    }
    if let (true, Value::Array(items)) = (is_list(arg), value) {
        return items.iter().map(scalar).collect();
    }
    Ok(vec![scalar(value)?])
}

/// A string or number as text; anything else is the wrong type for a setting.
fn scalar(value: &Value) -> anyhow::Result<String> {
    match value {
        Value::String(s) => Ok(s.value().clone()),
        Value::Integer(i) => Ok(i.value().to_string()),
        Value::Float(f) => Ok(f.value().to_string()),
        other => bail!("expected a string or a number, found {}", other.type_name()),
    }
}

/// Checks `values` with `arg`'s own value parser (a zone name, a socket address, a number in
/// range), so that a wrong value is reported with its key and file, not as clap's complaint
/// about a default.
fn validate(arg: &Arg, values: &[String]) -> anyhow::Result<()> {
    if is_flag(arg) {
        return Ok(());
    }
    let probe = arg
        .clone()
        .env(None)
        .default_values(Vec::<String>::new())
        .required(false);
    let mut argv: Vec<OsString> = vec!["lpm".into()];
    for v in values {
        argv.push(format!("--{}={v}", arg.get_long().unwrap_or_default()).into());
    }
    Command::new("lpm")
        .arg(probe)
        .try_get_matches_from(argv)
        .map(drop)
        .map_err(|e| {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            anyhow!("{}", first.trim_start_matches("error: "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn serve_matches(file: &str, argv: &[&str]) -> anyhow::Result<ArgMatches> {
        let cmd = apply(crate::Cli::command(), file)?;
        let m = cmd.try_get_matches_from(["lpm", "serve"].iter().chain(argv))?;
        crate::Cli::from_arg_matches(&m)?;
        Ok(m.subcommand_matches("serve").context("serve")?.clone())
    }

    #[test]
    fn booleans_lists_numbers_and_globals_become_defaults() {
        let file = "demo = true\nworkers = 7\nallowed_origins = [\"https://a\", \"https://b\"]\n\
                    kafka_option = [\"x=1\"]\nlog = \"debug\"\ncapture_prefix = \"p\"\n";
        let m = serve_matches(file, &[]).expect("parses");
        assert!(m.get_flag("demo"));
        assert_eq!(m.get_one::<usize>("workers"), Some(&7));
        let origins: Vec<&String> = m.get_many("allowed_origins").expect("set").collect();
        assert_eq!(origins, ["https://a", "https://b"]);
        assert_eq!(m.get_one::<String>("prefix").map(String::as_str), Some("p"));
        assert_eq!(
            m.get_one::<String>("log").map(String::as_str),
            Some("debug")
        );
        // the command line still wins over the file, for values and for lists
        let m = serve_matches(file, &["-w", "3", "--allowed-origins", "https://c"]).expect("ok");
        assert_eq!(m.get_one::<usize>("workers"), Some(&3));
        let origins: Vec<&String> = m.get_many("allowed_origins").expect("set").collect();
        assert_eq!(origins, ["https://c"]);
    }

    #[test]
    fn wrong_keys_and_types_name_the_key() {
        let err = |file: &str| format!("{:#}", serve_matches(file, &[]).expect_err(file));
        assert!(err("no_such = 1").contains("unknown key `no_such`"));
        assert!(err("config = \"x\"").contains("unknown key `config`"));
        assert!(err("help = true").contains("unknown key `help`"));
        let bad = err("workers = \"many\"");
        assert!(
            bad.contains("key `workers`") && bad.contains("many"),
            "{bad}"
        );
        assert!(err("demo = \"yes\"").contains("key `demo`: expected true or false"));
        assert!(err("workers = true").contains("key `workers`: expected a string or a number"));
        assert!(err("listen = [\"a\"]").contains("key `listen`"));
        assert!(err("tz = \"Mars/Base\"").contains("key `tz`"));
        assert!(err("capture_snapshot = \"sometimes\"").contains("key `capture_snapshot`"));
        assert!(err("[serve]\nlisten = \"x\"").contains("key `serve`"));
        assert!(err("workers = ").contains("TOML parse error"));
    }
}
