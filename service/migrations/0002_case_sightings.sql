-- Migration 0002: case_sightings, the sightings of a case's missing person (issue 18).
-- Origin: a verbatim copy of the case_sightings table of shared/schema.sql (also in
-- connectors/data/schema.sql, which the decoder's column catalog compiles in).

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
