-- The writes of a job's life, each one statement: a round trip from the gateway costs far more
-- than the work PostgreSQL does for it (benchmarks: bench/README.md). The rules are those the
-- gateway applied statement by statement before; each function runs in its caller's transaction.

-- The sweeper's way to the few live jobs, keyed on a column no update changes. A progress message
-- updates its job's progress and last_activity_at; with no index on those columns, and room left
-- on each page, that update is a HOT update: no new entry in any of the table's indexes (thousands
-- of progress messages a second cost PostgreSQL a fraction of what they did).
DROP INDEX jobs_live_idx;
CREATE INDEX jobs_live_idx ON jobs (owner_id) WHERE status IN ('QUEUED', 'RUNNING');
ALTER TABLE jobs SET (fillfactor = 70);

-- How many live (QUEUED or RUNNING) jobs each user has, kept by triggers on every change of a job's
-- liveness, so that a job start reads one number instead of counting rows (a count that grows with
-- the jobs finished since the last vacuum, under the owner's lock).
ALTER TABLE users ADD COLUMN live_jobs integer NOT NULL DEFAULT 0 CHECK (live_jobs >= 0);
UPDATE users u SET live_jobs = (SELECT count(*) FROM jobs j WHERE j.owner_id = u.id AND j.status IN ('QUEUED', 'RUNNING'));

CREATE FUNCTION count_live_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('QUEUED', 'RUNNING') THEN
    UPDATE users SET live_jobs = live_jobs - 1 WHERE id = OLD.owner_id;
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('QUEUED', 'RUNNING') THEN
    UPDATE users SET live_jobs = live_jobs + 1 WHERE id = NEW.owner_id;
  END IF;
  RETURN NULL;
END $$;
-- Only when liveness changes: progress updates (RUNNING to RUNNING) do not touch users.
CREATE TRIGGER jobs_live_inserted AFTER INSERT ON jobs FOR EACH ROW
  WHEN (NEW.status IN ('QUEUED', 'RUNNING')) EXECUTE FUNCTION count_live_jobs();
CREATE TRIGGER jobs_live_deleted AFTER DELETE ON jobs FOR EACH ROW
  WHEN (OLD.status IN ('QUEUED', 'RUNNING')) EXECUTE FUNCTION count_live_jobs();
CREATE TRIGGER jobs_live_changed AFTER UPDATE OF status, owner_id ON jobs FOR EACH ROW
  WHEN ((OLD.status IN ('QUEUED', 'RUNNING')) IS DISTINCT FROM (NEW.status IN ('QUEUED', 'RUNNING')) OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
  EXECUTE FUNCTION count_live_jobs();

-- Locks the owner's row until the end of the transaction (so concurrent starts of one owner are
-- checked one after another: a start waiting for the lock reads the count the previous one left),
-- then tells whether the owner has fewer than max_active live jobs.
CREATE FUNCTION job_slot_available(owner uuid, max_active integer) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
  SELECT live_jobs < max_active FROM users WHERE id = owner FOR UPDATE
$$;

-- Stores a new accepted classification of a part number for a job, marking the one it supersedes
-- as REPLACED; results for one part number are stored one after another (its row is locked).
-- Idempotent per job and part number: returns the classification's id.
CREATE FUNCTION store_classification(
  job uuid, partnumber_code text, ncm text, ex text, nve text, description text,
  maker_name text, maker_address text, maker_country text, confidence numeric
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  partnumber_row uuid;
  maker uuid;
  stored uuid;
BEGIN
  INSERT INTO partnumbers (code) VALUES (partnumber_code)
    ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code
    RETURNING id INTO partnumber_row;
  SELECT c.id INTO stored FROM classifications c WHERE c.job_id = job AND c.partnumber_id = partnumber_row;
  IF FOUND THEN
    RETURN stored;
  END IF;
  IF maker_name IS NOT NULL THEN
    INSERT INTO manufacturers (name, address, country) VALUES (maker_name, maker_address, maker_country)
      ON CONFLICT (lower(name)) DO UPDATE
        SET address = COALESCE(EXCLUDED.address, manufacturers.address),
            country = COALESCE(EXCLUDED.country, manufacturers.country), updated_at = now()
      RETURNING id INTO maker;
  END IF;
  UPDATE classifications SET status = 'REPLACED' WHERE partnumber_id = partnumber_row AND status = 'ACTIVE';
  INSERT INTO classifications (partnumber_id, job_id, ncm, ex, nve, description, manufacturer_id, confidence, status)
    VALUES (partnumber_row, job, store_classification.ncm, store_classification.ex, store_classification.nve,
            store_classification.description, maker, store_classification.confidence, 'ACTIVE')
    RETURNING id INTO stored;
  RETURN stored;
END $$;

-- Ends a live job in its attempt: its final status, its classification when a single job
-- succeeded (classification_ncm and the rest), and its one final audit event. A failed batch
-- fails what was still pending (finished items keep their results) and its running chunks.
-- Returns false when the job had already ended or moved to another attempt (another instance won).
CREATE FUNCTION finish_job(
  job uuid, job_attempt integer, final_status text, failure text,
  classification_ncm text, classification_ex text, classification_nve text, classification_description text,
  maker_name text, maker_address text, maker_country text, classification_confidence numeric,
  event_payload jsonb, event_hash bytea
) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ended jobs%ROWTYPE;
BEGIN
  UPDATE jobs SET status = final_status, error = failure, finished_at = now(), updated_at = now(), last_activity_at = now()
   WHERE id = job AND attempt = job_attempt AND status IN ('QUEUED', 'RUNNING')
   RETURNING * INTO ended;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF final_status = 'DONE' AND ended.kind = 'SINGLE' THEN
    UPDATE jobs SET classification_id = store_classification(
      job, ended.partnumber, classification_ncm, classification_ex, classification_nve, classification_description,
      maker_name, maker_address, maker_country, classification_confidence)
     WHERE id = job;
  ELSIF final_status = 'FAILED' THEN
    UPDATE job_items SET status = 'FAILED', error = failure, finished_at = now(), finish_order = nextval('job_items_finish_order')
     WHERE job_id = job AND status = 'PENDING';
    UPDATE job_chunks SET status = 'FAILED', error = failure
     WHERE job_id = job AND attempt = job_attempt AND status = 'RUNNING';
  END IF;
  INSERT INTO job_events (job_id, attempt, type, payload, message_hash, final)
    VALUES (job, job_attempt, CASE final_status WHEN 'DONE' THEN 'done' ELSE 'failed' END, event_payload, event_hash, true);
  RETURN true;
END $$;
