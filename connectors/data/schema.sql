-- Copied verbatim from shared/schema.sql (the project's canonical source schema, 2026-12-07:
-- case_sightings added), plus the columns a later migration adds (service/migrations/0003_*:
-- case_cases.public, public_id), so the catalog describes the schema `lpm migrate` leaves.
-- Canonical source schema (MySQL 8 / MariaDB 10.11) for the lost-persons system of record.
-- Debezium captures these tables; the engine consumes their change events.
-- Topic names follow Debezium's convention: <topic.prefix>.<database>.<table>,
-- e.g. lpm.lost_persons_db.persons_lost (prefix "lpm", database "lost_persons_db").

CREATE TABLE responsible_contacts (
  id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  full_name   VARCHAR(200) NOT NULL,
  agency      VARCHAR(120) NOT NULL,          -- e.g. 'Policia Nacional', 'ECU 911', 'Cruz Roja'
  phone       VARCHAR(40)  NULL,
  email       VARCHAR(200) NULL,
  active      TINYINT(1)   NOT NULL DEFAULT 1, -- Debezium: INT16 0/1 unless a boolean converter is set
  version     INT          NOT NULL DEFAULT 1  -- bumped by every write of the API
);

CREATE TABLE persons_lost (
  id                 BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  full_name          VARCHAR(200)  NOT NULL,
  age                SMALLINT      NULL,        -- NULL = unknown
  gender             VARCHAR(16)   NOT NULL,    -- 'female' | 'male' | 'other' | 'unknown'
  last_seen_at       DATETIME(3)   NOT NULL,    -- local wall-clock time (REPORT_LOCAL_TZ); Debezium: io.debezium.time.Timestamp (epoch ms)
  reported_at        TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3), -- an instant; Debezium: io.debezium.time.ZonedTimestamp (ISO-8601, UTC)
  last_seen_place    VARCHAR(255)  NOT NULL,
  latitude           DECIMAL(9,6)  NULL,        -- Debezium decimal.handling.mode: precise (base64 bytes) | double | string
  longitude          DECIMAL(9,6)  NULL,
  description        TEXT          NULL,
  reporter_name      VARCHAR(200)  NULL,
  reporter_phone     VARCHAR(40)   NULL,
  version            INT           NOT NULL DEFAULT 1
);

CREATE TABLE case_cases (
  id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  person_id       BIGINT       NOT NULL,        -- persons_lost.id; every report creates exactly one case
  status          VARCHAR(24)  NOT NULL,        -- 'open' | 'in_progress' | 'found_alive' | 'found_deceased' | 'closed'
  priority        VARCHAR(16)  NOT NULL,        -- 'low' | 'medium' | 'high' | 'critical'
  responsible_id  BIGINT       NULL,            -- responsible_contacts.id, current assignee
  opened_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  closed_at       TIMESTAMP(3) NULL,            -- set when status leaves open/in_progress
  version         INT          NOT NULL DEFAULT 1,
  public          TINYINT(1)   NULL DEFAULT 0,  -- migration 0003 (NOT NULL there): the public page is served;
                                                -- NULL here so events of the original schema, which lack it, decode
  public_id       VARCHAR(32)  NULL,            -- migration 0003: its unguessable id, kept once made
  KEY (person_id), KEY (responsible_id)
);

CREATE TABLE case_actions (
  id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id          BIGINT       NOT NULL,
  action_type      VARCHAR(40)  NOT NULL,       -- 'note' | 'search' | 'call' | 'sighting' | 'status_change' | 'assignment'
  notes            TEXT         NULL,
  responsible_id   BIGINT       NULL,
  responsible_name VARCHAR(200) NULL,           -- denormalised at write time, as in the original system
  created_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY (case_id)
);

CREATE TABLE case_responsible_history (
  id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id         BIGINT       NOT NULL,
  responsible_id  BIGINT       NOT NULL,
  assigned_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  unassigned_at   TIMESTAMP(3) NULL,            -- NULL while current
  KEY (case_id)
);

-- Sightings of a missing person, from responders or from the public case page. The oracle and the
-- generator do not read this table yet; an engine must decode it and must not let it change any
-- other view.
CREATE TABLE case_sightings (
  id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id         BIGINT       NOT NULL,
  seen_at         DATETIME(3)  NOT NULL,        -- local wall-clock time, like persons_lost.last_seen_at
  place           VARCHAR(255) NOT NULL,
  latitude        DECIMAL(9,6) NULL,
  longitude       DECIMAL(9,6) NULL,
  description     TEXT         NULL,
  reporter_name   VARCHAR(200) NULL,
  reporter_phone  VARCHAR(40)  NULL,
  source          VARCHAR(16)  NOT NULL,        -- 'responder' | 'public'
  created_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  version         INT          NOT NULL DEFAULT 1,
  KEY (case_id)
);
