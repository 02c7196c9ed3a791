-- Migration 0003: publishing a case (issue 18). A published case has a public page
-- (/public/cases/{public_id}) and a poster whose QR code links to it.
-- `public_id` is random (128 bits, URL-safe base64, 22 characters) and kept once generated, so
-- an unpublished and republished case, or a reprinted poster, keeps its link.
-- Debezium dumps of the original schema lack both columns; the decoder reads them as not public.

ALTER TABLE case_cases
  ADD COLUMN public    TINYINT(1)  NOT NULL DEFAULT 0,
  ADD COLUMN public_id VARCHAR(32) NULL,
  ADD UNIQUE KEY case_cases_public_id (public_id);
