-- Uploaded purchase orders and batch classification jobs.

CREATE TABLE documents (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id     uuid NOT NULL REFERENCES users (id),
  filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
  size_bytes   integer NOT NULL CHECK (size_bytes > 0),
  sha256       bytea NOT NULL CHECK (length(sha256) = 32),
  pages        integer NOT NULL CHECK (pages > 0),
  -- [{partnumber, page, line, description?, quantity?}] in order of first appearance
  part_numbers jsonb NOT NULL CHECK (jsonb_typeof(part_numbers) = 'array'),
  total        integer NOT NULL CHECK (total >= 0),
  -- The file itself, only when DOCUMENT_STORE_FILES is on.
  content      bytea,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_owner_created_idx ON documents (owner_id, created_at DESC, id DESC);

ALTER TABLE jobs ADD COLUMN document_id uuid REFERENCES documents (id);

-- One row per distinct part number of a batch job.
CREATE TABLE job_items (
  job_id            uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  position          integer NOT NULL CHECK (position >= 0),
  partnumber        text NOT NULL CHECK (partnumber = upper(btrim(partnumber)) AND length(partnumber) BETWEEN 1 AND 100),
  input             jsonb NOT NULL,
  status            text NOT NULL CHECK (status IN ('PENDING', 'DONE', 'FAILED')),
  source            text CHECK (source IN ('AI', 'HISTORY')),
  classification_id uuid REFERENCES classifications (id),
  error             text,
  -- Order in which items finished, so a stream can send those it has not sent yet.
  finish_order      bigint,
  finished_at       timestamptz,
  PRIMARY KEY (job_id, partnumber),
  UNIQUE (job_id, position),
  CHECK ((status = 'PENDING') = (finished_at IS NULL)),
  CHECK (status <> 'DONE' OR classification_id IS NOT NULL),
  CHECK (status <> 'FAILED' OR error IS NOT NULL)
);
CREATE SEQUENCE job_items_finish_order;
CREATE INDEX job_items_finished_idx ON job_items (job_id, finish_order) WHERE finish_order IS NOT NULL;

-- A batch is sent to the AI server in chunks of at most AI_BATCH_SIZE part numbers,
-- each on its own progress channel (so one chunk's `done` does not end the others).
CREATE TABLE job_chunks (
  job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt     integer NOT NULL,
  chunk       integer NOT NULL CHECK (chunk >= 0),
  channel     text NOT NULL,
  partnumbers text[] NOT NULL,
  status      text NOT NULL CHECK (status IN ('RUNNING', 'DONE', 'FAILED')),
  ai_job_id   text,
  error       text,
  PRIMARY KEY (job_id, attempt, chunk)
);
CREATE UNIQUE INDEX job_chunks_channel_key ON job_chunks (channel);
