-- What the real AI server does (issue 12): it answers late, names other part numbers, and sends
-- answers no item was waiting for. Nothing it sends is lost: a late answer revives a job failed by
-- its deadline, an answer that cannot be trusted waits for review, an answer that matches no item
-- is kept on its job.

-- Failed by the gateway's deadline ("no news"), not by the AI server: a late answer may still turn it DONE.
ALTER TABLE jobs ADD COLUMN timed_out boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD CONSTRAINT jobs_timed_out_check CHECK (NOT timed_out OR status = 'FAILED');

-- An item failed without an answer of the AI server (its deadline passed, its chunk ended or never
-- started without a word about it): the AI server's own answer, when it comes, takes its place.
ALTER TABLE job_items ADD COLUMN no_answer boolean NOT NULL DEFAULT false;

-- The review state: a result stored but not accepted until a person says so (PATCH /classifications/:id).
ALTER TABLE classifications DROP CONSTRAINT classifications_status_check;
ALTER TABLE classifications ADD CONSTRAINT classifications_status_check CHECK (status IN ('ACTIVE', 'PENDING', 'REJECTED', 'REPLACED'));
-- Why a result waits for review (codes, see src/services/classifications/review-reasons.ts).
ALTER TABLE classifications ADD COLUMN review_reasons text[] NOT NULL DEFAULT '{}';
-- The part number the AI server's answer named, when it is not the one asked for.
ALTER TABLE classifications ADD COLUMN answered_partnumber text CHECK (length(answered_partnumber) BETWEEN 1 AND 100);
ALTER TABLE classifications ADD CONSTRAINT classifications_pending_has_reason CHECK (status <> 'PENDING' OR cardinality(review_reasons) > 0);
CREATE INDEX classifications_pending_idx ON classifications (created_at DESC) WHERE status = 'PENDING';
-- A job stores one result per part number, and besides it one that waited for review: a single job
-- whose answer named another part number may still get its own (review_reasons are never changed
-- once stored: they say why it waited, even after it was accepted).
DROP INDEX classifications_job_idx;
CREATE UNIQUE INDEX classifications_job_idx ON classifications (job_id, partnumber_id, (cardinality(review_reasons) > 0));

-- An answer to a batch that no item could take: it named no item of the batch and none was
-- waiting, or its item had been answered already with something else. Kept and shown, never dropped.
CREATE TABLE job_unmatched_answers (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  reason       text NOT NULL CHECK (reason IN ('no_item', 'item_answered')),
  -- The part number the answer named (its result's, else its text's), if any.
  partnumber   text CHECK (length(partnumber) BETWEEN 1 AND 100),
  -- The usable result it carried (the classification fields), or the failure it reported.
  result       jsonb,
  error        text,
  -- The AI server's own text that came with it.
  message      text,
  message_hash bytea NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((result IS NULL) <> (error IS NULL))
);
CREATE UNIQUE INDEX job_unmatched_answers_dedup_idx ON job_unmatched_answers (job_id, message_hash);
CREATE INDEX job_unmatched_answers_job_idx ON job_unmatched_answers (job_id, id);

-- As in 005, with the review state: a result with review reasons is stored PENDING and leaves the
-- part number's accepted classification as it is.
DROP FUNCTION store_classification(uuid, text, text, text, text, text, text, text, text, numeric);
CREATE FUNCTION store_classification(
  job uuid, partnumber_code text, ncm text, ex text, nve text, description text,
  maker_name text, maker_address text, maker_country text, confidence numeric,
  reasons text[], answered_partnumber text
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  partnumber_row uuid;
  maker uuid;
  stored uuid;
  pending boolean := cardinality(coalesce(reasons, '{}')) > 0;
BEGIN
  INSERT INTO partnumbers (code) VALUES (partnumber_code)
    ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code
    RETURNING id INTO partnumber_row;
  SELECT c.id INTO stored FROM classifications c
   WHERE c.job_id = job AND c.partnumber_id = partnumber_row AND (cardinality(c.review_reasons) > 0) = pending;
  IF FOUND THEN
    RETURN stored;
  END IF;
  IF maker_name IS NOT NULL THEN
    SELECT m.id INTO maker FROM manufacturers m
     WHERE lower(m.name) = lower(maker_name)
       AND (maker_address IS NULL OR m.address IS NOT DISTINCT FROM maker_address)
       AND (maker_country IS NULL OR m.country IS NOT DISTINCT FROM maker_country);
    IF NOT FOUND THEN
      INSERT INTO manufacturers (name, address, country) VALUES (maker_name, maker_address, maker_country)
        ON CONFLICT (lower(name)) DO UPDATE
          SET address = COALESCE(EXCLUDED.address, manufacturers.address),
              country = COALESCE(EXCLUDED.country, manufacturers.country), updated_at = now()
        RETURNING id INTO maker;
    END IF;
  END IF;
  IF NOT pending THEN
    UPDATE classifications SET status = 'REPLACED' WHERE partnumber_id = partnumber_row AND status = 'ACTIVE';
  END IF;
  INSERT INTO classifications (partnumber_id, job_id, ncm, ex, nve, description, manufacturer_id, confidence, status, review_reasons, answered_partnumber)
    VALUES (partnumber_row, job, store_classification.ncm, store_classification.ex, store_classification.nve,
            store_classification.description, maker, store_classification.confidence,
            CASE WHEN pending THEN 'PENDING' ELSE 'ACTIVE' END, coalesce(reasons, '{}'), store_classification.answered_partnumber)
    RETURNING id INTO stored;
  RETURN stored;
END $$;

-- As in 004, with two changes. A result may carry review reasons (stored PENDING, see
-- store_classification). A job failed by its deadline is marked timed_out, and a single job is
-- revived by a later result when it failed so, or when its result waits for review and the new one
-- needs none: it is DONE with that result, its final event is the new one, and its task_results
-- message is due again.
DROP FUNCTION finish_job(uuid, integer, text, text, text, text, text, text, text, text, text, numeric, jsonb, bytea);
CREATE FUNCTION finish_job(
  job uuid, job_attempt integer, final_status text, failure text, by_deadline boolean,
  classification_ncm text, classification_ex text, classification_nve text, classification_description text,
  maker_name text, maker_address text, maker_country text, classification_confidence numeric,
  reasons text[], answered_partnumber text,
  event_payload jsonb, event_hash bytea
) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ended jobs%ROWTYPE;
  revived boolean;
BEGIN
  SELECT * INTO ended FROM jobs WHERE id = job AND attempt = job_attempt FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  revived := final_status = 'DONE' AND ended.kind = 'SINGLE' AND (
    (ended.status = 'FAILED' AND ended.timed_out)
    OR (ended.status = 'DONE' AND cardinality(coalesce(reasons, '{}')) = 0
        AND EXISTS (SELECT 1 FROM classifications c WHERE c.id = ended.classification_id AND c.status = 'PENDING')));
  IF ended.status NOT IN ('QUEUED', 'RUNNING') AND NOT revived THEN
    RETURN false;
  END IF;
  -- A deadline is no word from the AI server: the job's last activity stays when it last had one.
  UPDATE jobs SET status = final_status, error = failure, timed_out = (final_status = 'FAILED' AND coalesce(by_deadline, false)),
                  finished_at = now(), updated_at = now(), result_published_at = NULL,
                  last_activity_at = CASE WHEN coalesce(by_deadline, false) THEN last_activity_at ELSE now() END
   WHERE id = job;
  IF final_status = 'DONE' AND ended.kind = 'SINGLE' THEN
    UPDATE jobs SET classification_id = store_classification(
      job, ended.partnumber, classification_ncm, classification_ex, classification_nve, classification_description,
      maker_name, maker_address, maker_country, classification_confidence, reasons, answered_partnumber)
     WHERE id = job;
  ELSIF final_status = 'FAILED' THEN
    UPDATE job_items SET status = 'FAILED', error = failure, no_answer = true, finished_at = now(), finish_order = nextval('job_items_finish_order')
     WHERE job_id = job AND status = 'PENDING';
    UPDATE job_chunks SET status = 'FAILED', error = failure
     WHERE job_id = job AND attempt = job_attempt AND status = 'RUNNING';
  END IF;
  IF revived THEN
    UPDATE job_events SET final = false WHERE job_id = job AND attempt = job_attempt AND final;
  END IF;
  INSERT INTO job_events (job_id, attempt, type, payload, message_hash, final)
    VALUES (job, job_attempt, CASE final_status WHEN 'DONE' THEN 'done' ELSE 'failed' END, event_payload, event_hash, true);
  RETURN true;
END $$;
