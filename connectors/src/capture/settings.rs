//! Preflight: the server settings a binlog capture depends on, checked at every (re)connect, so a
//! wrong setting stops the capture with a message naming it instead of producing partial rows.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use super::record::BinlogPosition;
use super::{CaptureConfig, CaptureError};

/// What the preflight learned about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// `@@version`.
    pub version: String,
    /// MariaDB (GTIDs `domain-server-seq`, `binlog_snapshot_*` status) rather than MySQL.
    pub mariadb: bool,
    /// The server's `@@server_id`.
    pub server_id: u32,
}

/// Reads the settings and refuses the wrong ones, naming each.
pub async fn preflight(opts: &Opts, cfg: &CaptureConfig) -> Result<ServerInfo, CaptureError> {
    let mut conn = Conn::new(opts.clone()).await?;
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'log_bin', 'binlog_format', \
             'binlog_row_image', 'binlog_row_metadata', 'server_id', 'log_bin_compress', \
             'binlog_row_value_options')",
        )
        .await?;
    let _ = conn.disconnect().await;
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let version = get("version").unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let server_id: u32 = get("server_id").and_then(|v| v.parse().ok()).unwrap_or(0);
    let problems = check(&vars, cfg.server_id, server_id);
    if !problems.is_empty() {
        return Err(CaptureError::Settings(format!(
            "the server at {} is not ready for binlog capture:\n  - {}\n\
             Set these in the server's configuration ([mariadb] or [mysqld] section) and restart it.",
            opts.ip_or_hostname(),
            problems.join("\n  - ")
        )));
    }
    Ok(ServerInfo {
        version,
        mariadb,
        server_id,
    })
}

/// The problems with a set of `SHOW GLOBAL VARIABLES` rows, one sentence each naming the setting.
pub fn check(vars: &[(String, String)], our_id: u32, server_id: u32) -> Vec<String> {
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_uppercase())
    };
    let mut out = Vec::new();
    let want = |out: &mut Vec<String>, name: &str, ok: &[&str], fix: &str| match get(name) {
        Some(v) if ok.contains(&v.as_str()) => {}
        Some(v) => out.push(format!("{name} is {v}; it must be {fix}")),
        None => out.push(format!(
            "{name} is not set (an old server?); it must be {fix}"
        )),
    };
    want(&mut out, "log_bin", &["ON", "1"], "ON (log_bin=mysql-bin)");
    want(
        &mut out,
        "binlog_format",
        &["ROW"],
        "ROW (binlog_format=ROW)",
    );
    want(
        &mut out,
        "binlog_row_image",
        &["FULL"],
        "FULL (binlog_row_image=FULL): other images omit columns",
    );
    want(
        &mut out,
        "binlog_row_metadata",
        &["FULL"],
        "FULL (binlog_row_metadata=FULL): the binlog then carries column names and keys",
    );
    if let Some(v) = get("log_bin_compress") {
        if v != "OFF" && v != "0" {
            out.push(format!(
                "log_bin_compress is {v}; it must be OFF (compressed row events are not readable)"
            ));
        }
    }
    if let Some(v) = get("binlog_row_value_options") {
        if v.contains("PARTIAL_JSON") {
            out.push("binlog_row_value_options is PARTIAL_JSON; it must be empty".into());
        }
    }
    if our_id == server_id {
        out.push(format!(
            "server_id is {server_id}, the same as the capture's --server-id; choose another capture id"
        ));
    }
    out
}

/// The server's current binlog end (streaming without a snapshot).
pub async fn current_position(opts: &Opts) -> Result<BinlogPosition, CaptureError> {
    let mut conn = Conn::new(opts.clone()).await?;
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let gtid: Option<Option<String>> = conn
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .unwrap_or(None);
    let _ = conn.disconnect().await;
    let row = row.ok_or_else(|| {
        CaptureError::Settings("SHOW MASTER STATUS is empty: binary logging is off".into())
    })?;
    let file: String = row
        .get(0)
        .ok_or_else(|| CaptureError::Settings("SHOW MASTER STATUS has no file".into()))?;
    let pos: u64 = row
        .get(1)
        .ok_or_else(|| CaptureError::Settings("SHOW MASTER STATUS has no position".into()))?;
    Ok(BinlogPosition {
        file,
        pos,
        gtid: gtid.flatten().filter(|g| !g.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn good_settings_pass_and_each_bad_one_is_named() {
        let good = [
            ("log_bin", "ON"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
            ("binlog_row_metadata", "FULL"),
            ("log_bin_compress", "OFF"),
            ("server_id", "1"),
        ];
        assert!(check(&vars(&good), 99, 1).is_empty());
        for (name, bad) in [
            ("log_bin", "OFF"),
            ("binlog_format", "MIXED"),
            ("binlog_row_image", "MINIMAL"),
            ("binlog_row_metadata", "NO_LOG"),
            ("log_bin_compress", "ON"),
        ] {
            let v: Vec<(&str, &str)> = good
                .iter()
                .map(|(k, v)| if *k == name { (*k, bad) } else { (*k, *v) })
                .collect();
            let problems = check(&vars(&v), 99, 1);
            assert_eq!(problems.len(), 1, "{name}: {problems:?}");
            assert!(problems[0].starts_with(name), "{problems:?}");
        }
        let problems = check(&vars(&good), 1, 1);
        assert!(problems[0].contains("server_id"), "{problems:?}");
    }
}
