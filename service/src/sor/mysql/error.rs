//! `MysqlError` and how each failure is treated: retried (deadlock, lock-wait timeout, a
//! duplicate key from a concurrent insert, a broken pooled connection), or answered as 503
//! naming MySQL (the server is down, slow or misconfigured; never the client's fault).

use std::time::Duration;

/// A failure talking to MySQL.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// The URL does not parse or lacks a database.
    #[error("the MySQL URL is invalid: {0}")]
    Url(String),
    /// No answer within the bound (connect, statements or the whole write).
    #[error("MySQL did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The driver or the server failed.
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// A row that does not have the shape of `schema.sql`, or an update that matched nothing
    /// although its row was locked.
    #[error("MySQL returned unexpected data: {0}")]
    Data(String),
}

/// How a failure is handled, and its `kind` label on `lpm_mysql_write_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 1213: InnoDB chose this transaction as a deadlock victim (retried).
    Deadlock,
    /// 1205: a row lock was not granted in time (retried).
    LockWaitTimeout,
    /// 1062: a concurrent write took the same explicit id (retried with fresh ids).
    DuplicateKey,
    /// The connection broke or could not be made (retried a few times, then 503).
    Connection,
    /// No answer in time (503).
    Timeout,
    /// Any other server error: missing table, access denied, ... (503).
    Server,
    /// Unexpected data (503).
    Data,
}

impl ErrorKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::LockWaitTimeout => "lock_wait_timeout",
            ErrorKind::DuplicateKey => "duplicate_key",
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Server => "server",
            ErrorKind::Data => "data",
        }
    }

    /// Whether a new attempt (a new transaction, maybe a new connection) can succeed. A broken
    /// connection is retried because the pool may hand out one that died while MySQL restarted;
    /// when MySQL is really down the next connect is refused at once, so retries stay quick.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Deadlock
                | ErrorKind::LockWaitTimeout
                | ErrorKind::DuplicateKey
                | ErrorKind::Connection
        )
    }

    /// Whether the failure says MySQL itself is unreachable (for `lpm_mysql_up`).
    pub fn means_down(self) -> bool {
        matches!(self, ErrorKind::Connection | ErrorKind::Timeout)
    }
}

impl MysqlError {
    /// Classifies the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MysqlError::Timeout(_) => ErrorKind::Timeout,
            MysqlError::Data(_) => ErrorKind::Data,
            MysqlError::Url(_) => ErrorKind::Server,
            MysqlError::Mysql(mysql_async::Error::Server(e)) => match e.code {
                1213 => ErrorKind::Deadlock,
                1205 => ErrorKind::LockWaitTimeout,
                1062 => ErrorKind::DuplicateKey,
                // 1053 shutdown in progress, 1927 connection killed, 2006/2013 gone away
                1053 | 1927 | 2006 | 2013 => ErrorKind::Connection,
                _ => ErrorKind::Server,
            },
            MysqlError::Mysql(mysql_async::Error::Url(_)) => ErrorKind::Server,
            MysqlError::Mysql(_) => ErrorKind::Connection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> MysqlError {
        MysqlError::Mysql(mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "x".into(),
            state: "HY000".into(),
        }))
    }

    #[test]
    fn races_and_broken_connections_are_retried_the_rest_is_not() {
        assert_eq!(server(1213).kind(), ErrorKind::Deadlock);
        assert_eq!(server(1205).kind(), ErrorKind::LockWaitTimeout);
        assert_eq!(server(1062).kind(), ErrorKind::DuplicateKey);
        for code in [1213, 1205, 1062] {
            assert!(server(code).kind().retryable(), "{code}");
        }
        // a missing table (no `lpm migrate`) or a denied user does not get better by retrying
        assert!(!server(1146).kind().retryable());
        assert!(!server(1045).kind().retryable());
        let io = MysqlError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        assert_eq!(io.kind(), ErrorKind::Connection);
        assert!(io.kind().retryable() && io.kind().means_down());
        let t = MysqlError::Timeout(Duration::from_millis(1500));
        assert!(!t.kind().retryable() && t.kind().means_down());
        assert_eq!(t.to_string(), "MySQL did not answer within 1500 ms");
    }
}
