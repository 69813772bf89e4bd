-- The official NCM table (issue 15): the nomenclature as Siscomex publishes it, replaced whole by
-- each import (src/services/ncm/ncm-import.ts), so every result can be checked against it.

CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per code of the table: chapters (2 digits), headings (4), subheadings (5, 6), and
-- items (7, 8 digits). Codes are stored as digits only ("8542.31.90" is 85423190).
CREATE TABLE ncm_entries (
  code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2,8}$'),
  -- The official description with its HTML tags removed and its entities decoded.
  description text NOT NULL CHECK (length(description) BETWEEN 1 AND 4000),
  starts_on   date NOT NULL,
  -- Null while in force (Siscomex writes 31/12/9999).
  ends_on     date,
  -- The act that created the entry, e.g. "Res Camex 272/2021".
  act         text NOT NULL,
  -- lower(unaccent(description)), filled at import (unaccent is not IMMUTABLE, so it cannot be a
  -- generated column); searched by full text (portuguese stemming) and by trigrams.
  search      text NOT NULL,
  search_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('portuguese'::regconfig, search)) STORED,
  CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX ncm_entries_search_tsv_idx ON ncm_entries USING gin (search_tsv);
CREATE INDEX ncm_entries_search_trgm_idx ON ncm_entries USING gin (search gin_trgm_ops);

-- The version of the table in ncm_entries: one row, replaced with it in the same transaction.
CREATE TABLE ncm_table (
  one          boolean PRIMARY KEY DEFAULT true CHECK (one),
  -- The file's "Ato" (e.g. "Resolução Camex nº 641/2024") and "Data_Ultima_Atualizacao_NCM" (e.g. "Vigente em 13/05/2025").
  act          text NOT NULL,
  update_text  text NOT NULL,
  imported_at  timestamptz NOT NULL DEFAULT now(),
  entries      integer NOT NULL,
  items        integer NOT NULL,
  -- Where it came from (a path or URL) and the sha256 of the bytes read.
  source       text NOT NULL,
  sha256       text NOT NULL
);

-- IPI rates of the TIPI, per NCM item and Ex ('' for the item itself): imported apart from the
-- table (npm run ncm:import-tipi), kept when the table is refreshed. Null rate: "NT" (not taxed).
CREATE TABLE ncm_ipi (
  ncm   text NOT NULL CHECK (ncm ~ '^[0-9]{8}$'),
  ex    text NOT NULL DEFAULT '' CHECK (ex ~ '^([0-9]{2,3})?$'),
  rate  numeric(6, 2) CHECK (rate >= 0 AND rate <= 1000),
  PRIMARY KEY (ncm, ex)
);

CREATE TABLE ncm_ipi_version (
  one          boolean PRIMARY KEY DEFAULT true CHECK (one),
  imported_at  timestamptz NOT NULL DEFAULT now(),
  rows         integer NOT NULL,
  source       text NOT NULL,
  sha256       text NOT NULL
);
