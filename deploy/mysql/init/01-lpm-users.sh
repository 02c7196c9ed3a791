# Run once by the official MySQL image, on the first start of an empty data volume
# (/docker-entrypoint-initdb.d). The file is deliberately not executable: the entrypoint then
# sources it, so its `docker_process_sql` helper (root, local socket) is defined.
# Creates the lpm database and its three accounts; the tables come from `lpm migrate` (the
# lpm-migrate service), never from here.
#
# Passwords come from the environment (deploy/.env.example). Quotes and backslashes in one are
# escaped, so any character is safe in SQL; keep them URL-safe anyway, since lpm reads them inside
# mysql:// URLs. No `set -eu` here: it would leak into the entrypoint that sources us.

sql_quote() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }

debezium_pw=$(sql_quote "${MYSQL_DEBEZIUM_PASSWORD:?set MYSQL_DEBEZIUM_PASSWORD}")
lpm_pw=$(sql_quote "${MYSQL_LPM_PASSWORD:?set MYSQL_LPM_PASSWORD}")
sink_pw=$(sql_quote "${MYSQL_LPM_SINK_PASSWORD:?set MYSQL_LPM_SINK_PASSWORD}")

docker_process_sql <<SQL
CREATE DATABASE IF NOT EXISTS lost_persons_db CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;

-- Debezium: a consistent snapshot (SELECT, RELOAD, SHOW DATABASES, LOCK TABLES) and the binlog
-- stream (REPLICATION SLAVE, REPLICATION CLIENT). Global privileges, as MySQL requires for these.
CREATE USER IF NOT EXISTS 'debezium'@'%' IDENTIFIED BY '${debezium_pw}';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, LOCK TABLES
  ON *.* TO 'debezium'@'%';

-- lpm's writes (the system of record) and its migrations: DML plus the DDL \`lpm migrate\` runs.
CREATE USER IF NOT EXISTS 'lpm'@'%' IDENTIFIED BY '${lpm_pw}';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES
  ON lost_persons_db.* TO 'lpm'@'%';

-- lpm's aggregate sink: creates and rewrites its agg_* tables. MySQL grants cannot match
-- table-name patterns, so the grant is database-wide; keeping to agg_* is the sink's contract
-- (point LPM_SINK at a database of its own for a hard boundary).
CREATE USER IF NOT EXISTS 'lpm_sink'@'%' IDENTIFIED BY '${sink_pw}';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
  ON lost_persons_db.* TO 'lpm_sink'@'%';

FLUSH PRIVILEGES;
SQL
