-- A manufacturer named by many results (every classification of a popular maker's parts) was
-- upserted by each of them: a new row version and a row lock held to the end of the job's final
-- transaction, so the ends of all jobs naming one maker queued behind one another. It is now
-- written only when it is new or a result brings details it lacks or changes; otherwise it is
-- only read. (updated_at thus tells when its details last changed.) The rest is as in 004.
CREATE OR REPLACE FUNCTION store_classification(
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
  UPDATE classifications SET status = 'REPLACED' WHERE partnumber_id = partnumber_row AND status = 'ACTIVE';
  INSERT INTO classifications (partnumber_id, job_id, ncm, ex, nve, description, manufacturer_id, confidence, status)
    VALUES (partnumber_row, job, store_classification.ncm, store_classification.ex, store_classification.nve,
            store_classification.description, maker, store_classification.confidence, 'ACTIVE')
    RETURNING id INTO stored;
  RETURN stored;
END $$;
