//! `lpm migrate --mysql URL [--database DB]`: flags to `lpm_service::sor::mysql::migrate`.

use anyhow::Context;
use clap::Args;
use lpm_service::sor::mysql::migrate;

/// `lpm migrate` flags.
#[derive(Args)]
pub struct MigrateArgs {
    /// The server, `mysql://user:pass@host:port[/database]` (needs CREATE, ALTER, INSERT).
    #[arg(long, env = "LPM_MYSQL_URL")]
    mysql: String,
    /// The database to create or upgrade (default: the URL's, else `lost_persons_db`).
    #[arg(long, env = "LPM_MYSQL_DATABASE")]
    database: Option<String>,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let database = migrate::database_of(&args.mysql, args.database.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // the message says it all: no cause chain (the driver repeats its I/O error in it)
    let done = rt
        .block_on(migrate::migrate(&args.mysql, &database))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if done.created_database {
        println!("Created database {}.", done.database);
    }
    for label in &done.applied {
        println!("Applied {label}.");
    }
    if done.applied.is_empty() {
        println!(
            "Database {} is up to date ({} migrations applied).",
            done.database, done.already
        );
    } else {
        println!(
            "Database {} is up to date ({} applied now, {} before).",
            done.database,
            done.applied.len(),
            done.already
        );
    }
    Ok(())
}
