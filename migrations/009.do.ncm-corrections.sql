-- A person's correction of a result's NCM code (issue 15: PATCH /classifications/:id {ncm}), only
-- ever to a code VALID in the official NCM table (checked by the gateway before it writes).
-- The classification carries its latest correction; every correction is kept in order below.
ALTER TABLE classifications ADD COLUMN previous_ncm text CHECK (previous_ncm ~ '^[0-9]{8}$');
ALTER TABLE classifications ADD COLUMN corrected_by uuid REFERENCES users (id);
ALTER TABLE classifications ADD COLUMN corrected_at timestamptz;
ALTER TABLE classifications ADD CONSTRAINT classifications_correction_check
  CHECK ((corrected_at IS NULL) = (previous_ncm IS NULL) AND (corrected_at IS NULL) = (corrected_by IS NULL));

CREATE TABLE classification_corrections (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  classification_id uuid NOT NULL REFERENCES classifications (id) ON DELETE CASCADE,
  previous_ncm      text NOT NULL CHECK (previous_ncm ~ '^[0-9]{8}$'),
  ncm               text NOT NULL CHECK (ncm ~ '^[0-9]{8}$'),
  -- The version of the official table the new code was checked against.
  table_version     text,
  corrected_by      uuid NOT NULL REFERENCES users (id),
  corrected_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX classification_corrections_classification_idx ON classification_corrections (classification_id, id);
