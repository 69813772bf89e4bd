-- Part numbers, manufacturers, classification jobs, their audit trail, and the classifications they produce.

CREATE TABLE partnumbers (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code       text NOT NULL CHECK (code = upper(btrim(code)) AND length(code) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX partnumbers_code_key ON partnumbers (code);
CREATE INDEX partnumbers_code_pattern_idx ON partnumbers (code text_pattern_ops);

CREATE TABLE manufacturers (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
  address    text,
  country    text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX manufacturers_name_key ON manufacturers (lower(name));

CREATE TABLE jobs (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind             text NOT NULL CHECK (kind IN ('SINGLE', 'BATCH')),
  owner_id         uuid NOT NULL REFERENCES users (id),
  status           text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
  source           text NOT NULL CHECK (source IN ('AI', 'HISTORY')),
  partnumber       text CHECK (partnumber = upper(btrim(partnumber))),
  input            jsonb NOT NULL,
  -- The Redis channel the AI server publishes on; a fresh one for every attempt.
  channel          text NOT NULL,
  attempt          integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  ai_job_id        text,
  progress_current integer CHECK (progress_current >= 0),
  progress_total   integer CHECK (progress_total >= 0),
  progress_message text,
  error            text,
  classification_id uuid,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  last_activity_at timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  -- When the final message went out on task_results (null: not yet).
  result_published_at timestamptz,
  CHECK ((status IN ('DONE', 'FAILED')) = (finished_at IS NOT NULL)),
  CHECK (status <> 'FAILED' OR error IS NOT NULL),
  CHECK (kind <> 'SINGLE' OR partnumber IS NOT NULL)
);
CREATE UNIQUE INDEX jobs_channel_key ON jobs (channel);
CREATE INDEX jobs_owner_created_idx ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_live_idx ON jobs (last_activity_at) WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX jobs_unpublished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL AND result_published_at IS NULL;
CREATE INDEX jobs_partnumber_idx ON jobs (partnumber);

CREATE TABLE classifications (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  partnumber_id   uuid NOT NULL REFERENCES partnumbers (id),
  job_id          uuid REFERENCES jobs (id),
  ncm             text NOT NULL CHECK (ncm ~ '^[0-9]{8}$'),
  ex              text CHECK (ex ~ '^[0-9]{1,3}$'),
  nve             text CHECK (length(nve) <= 20),
  description     text CHECK (length(description) <= 10000),
  manufacturer_id uuid REFERENCES manufacturers (id),
  confidence      numeric(5, 4) CHECK (confidence BETWEEN 0 AND 1),
  status          text NOT NULL CHECK (status IN ('ACTIVE', 'REJECTED', 'REPLACED')),
  reviewed_by     uuid REFERENCES users (id),
  reviewed_at     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- One accepted classification per part number, enforced by the database.
CREATE UNIQUE INDEX classifications_one_active_idx ON classifications (partnumber_id) WHERE status = 'ACTIVE';
CREATE INDEX classifications_partnumber_idx ON classifications (partnumber_id, created_at DESC);
CREATE UNIQUE INDEX classifications_job_idx ON classifications (job_id, partnumber_id);

ALTER TABLE jobs ADD CONSTRAINT jobs_classification_fk FOREIGN KEY (classification_id) REFERENCES classifications (id);

-- One row per message that moved a job, in arrival order; the audit trail of every job.
CREATE TABLE job_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  type         text NOT NULL CHECK (type IN ('created', 'progress', 'item', 'done', 'failed', 'retried')),
  payload      jsonb NOT NULL,
  -- Same message seen twice (two gateway instances, or the AI server repeating itself): stored once.
  message_hash bytea,
  final        boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);
CREATE UNIQUE INDEX job_events_dedup_idx ON job_events (job_id, attempt, message_hash);
CREATE UNIQUE INDEX job_events_one_final_idx ON job_events (job_id, attempt) WHERE final;
