//! `lpm completions SHELL` and `lpm man`: generated from the clap definition itself, so they
//! list exactly the flags the binary accepts and cannot drift from `--help`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// `lpm completions` flags.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `lpm man` flags.
#[derive(Args)]
pub struct ManArgs {
    /// Write one page per command (`lpm.1`, `lpm-serve.1`, ...) into this directory instead of
    /// printing the `lpm(1)` page.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lpm", &mut out);
    write_stdout(&out)
}

/// Prints the `lpm(1)` man page, or writes every command's page into `--out-dir`.
pub fn man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<()> {
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            Ok(())
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("rendering the man page")?;
            write_stdout(&out)
        }
    }
}

/// Writes `bytes` to stdout in one go (a closed pipe, as in `lpm man | head`, is an error
/// with a message rather than a panic).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}
