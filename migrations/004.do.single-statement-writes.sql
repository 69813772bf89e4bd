-- The writes of a job's life, each one statement: a round trip from the gateway costs far more
-- than the work PostgreSQL does for it (benchmarks: bench/README.md). The rules are those the
-- gateway applied statement by statement before; each function runs in its caller's transaction.

-- Live jobs of one owner, counted at every job start; also how the sweeper finds live jobs.
CREATE INDEX jobs_owner_live_idx ON jobs (owner_id) WHERE status IN ('QUEUED', 'RUNNING');

-- A progress message updates its job's progress and last_activity_at. With no index on those
-- columns, and room left on each page, that update is a HOT update: no new entry in any of the
-- table's indexes (thousands of progress messages a second cost PostgreSQL a fraction of what
-- they did). The sweeper scans the few live jobs through jobs_owner_live_idx instead.
DROP INDEX jobs_live_idx;
ALTER TABLE jobs SET (fillfactor = 70);

-- Locks the owner's row until the end of the transaction (so concurrent starts of one owner are
-- counted one after another), then tells whether the owner has fewer than max_active live jobs.
-- VOLATILE: the count takes a fresh snapshot, taken after the lock, so it sees the jobs of the
-- starts it waited for.
CREATE FUNCTION job_slot_available(owner uuid, max_active integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM 1 FROM users WHERE id = owner FOR UPDATE;
  RETURN (SELECT count(*) FROM (
            SELECT 1 FROM jobs WHERE owner_id = owner AND status IN ('QUEUED', 'RUNNING') LIMIT max_active
          ) AS live) < max_active;
END $$;

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
