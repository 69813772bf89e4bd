import type { Queryable } from '../../db/queryable.js'
import { tableVersion } from './ncm-check.js'
import { formatNcmCode, NCM_DIGITS, ncmDigits, pathCodes } from './ncm-codes.js'

export interface NcmPathStep { code: string; description: string }

export interface NcmEntryView {
  code: string
  code_formatted: string
  description: string
  /** From the chapter down to this entry (as present in the table). */
  path: NcmPathStep[]
  /** 8 digits: an item that a product can be classified in; fewer: a chapter, heading or subheading. */
  is_item: boolean
  in_force: boolean
  /** YYYY-MM-DD. */
  starts_on: string
  /** YYYY-MM-DD; null while in force with no end. */
  ends_on: string | null
  act: string
  /** The TIPI rate (percent) of the item without Ex; null when not known or NT. */
  ipi: number | null
  /** Every TIPI rate of the item, Ex by Ex ('' for the item itself). */
  ipi_rates: Array<{ ex: string; rate: number | null }>
  table_version: string
  /**
   * A chapter, heading or subheading: the items under it, in code order (at most NCM_MAX_ITEMS_UNDER).
   * Many items read only "Outros": under their heading they mean something, and can be picked.
   */
  items: Array<Pick<NcmEntryView, 'code' | 'code_formatted' | 'description' | 'in_force'>>
  items_total: number
}

/** The most items GET /ncm/:code lists under a chapter, heading or subheading. */
export const NCM_MAX_ITEMS_UNDER = 500

// "in force" is decided on today's date in Brasília.
const TODAY = `(now() AT TIME ZONE 'America/Sao_Paulo')::date`
const ENTRY_COLUMNS = `e.code, e.description, to_char(e.starts_on, 'YYYY-MM-DD') AS starts_on, to_char(e.ends_on, 'YYYY-MM-DD') AS ends_on, e.act,
  (e.starts_on <= ${TODAY} AND (e.ends_on IS NULL OR e.ends_on >= ${TODAY})) AS in_force`

/** One entry of the table with its path and IPI rates; null when the code is not in the table. */
export async function lookupNcm(db: Queryable, code: string): Promise<NcmEntryView | null> {
  const digits = ncmDigits(code)
  if (!NCM_DIGITS.test(digits)) return null
  const { rows } = await db.query({
    name: 'ncm-lookup',
    text: `SELECT ${ENTRY_COLUMNS}, t.act AS t_act, t.update_text, t.imported_at,
                  (SELECT coalesce(json_agg(json_build_object('ex', i.ex, 'rate', i.rate) ORDER BY i.ex), '[]') FROM ncm_ipi i WHERE i.ncm = e.code) AS ipi_rates
             FROM ncm_entries e CROSS JOIN ncm_table t
            WHERE e.code = ANY($1::text[])
            ORDER BY length(e.code)`,
    values: [pathCodes(digits)],
  })
  const entry = rows.find((r) => r.code === digits)
  if (!entry) return null
  const under = digits.length === 8 ? [] : (await db.query({
    name: 'ncm-items-under',
    text: `SELECT ${ENTRY_COLUMNS}, count(*) OVER () AS total FROM ncm_entries e
            WHERE left(e.code, $2) = $1 AND length(e.code) = 8 ORDER BY e.code LIMIT $3`,
    values: [digits, digits.length, NCM_MAX_ITEMS_UNDER],
  })).rows
  const ipiRates = (entry.ipi_rates as Array<{ ex: string; rate: string | number | null }>).map((r) => ({ ex: r.ex, rate: r.rate === null ? null : Number(r.rate) }))
  return {
    code: digits,
    code_formatted: formatNcmCode(digits),
    description: entry.description,
    path: rows.map((r) => ({ code: r.code, description: r.description })),
    is_item: digits.length === 8,
    in_force: entry.in_force,
    starts_on: entry.starts_on,
    ends_on: entry.ends_on,
    act: entry.act,
    ipi: ipiRates.find((r) => r.ex === '')?.rate ?? null,
    ipi_rates: ipiRates,
    table_version: tableVersion({ act: entry.t_act, update_text: entry.update_text, imported_at: entry.imported_at }),
    items: under.map((r) => ({ code: r.code, code_formatted: formatNcmCode(r.code), description: r.description, in_force: r.in_force })),
    items_total: under.length ? Number(under[0].total) : 0,
  }
}

export type NcmSearchHit = Pick<NcmEntryView, 'code' | 'code_formatted' | 'description' | 'path' | 'is_item' | 'in_force'> & { score: number }

/** The deepest page a search goes to: its offset stays at most this. */
export const NCM_SEARCH_MAX_OFFSET = 1000

/** Normalises a query as the table's search column is: lower case, accents removed (in PostgreSQL, by unaccent). */
const SEARCH_SQL = `
  WITH q AS (SELECT lower(unaccent($1::text)) AS text),
       t AS (SELECT q.text, plainto_tsquery('portuguese', q.text) AS query,
                    '%' || replace(replace(replace(q.text, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' AS pattern FROM q)
  SELECT ${ENTRY_COLUMNS},
         ts_rank(e.search_tsv, t.query, 1) + CASE WHEN e.search LIKE t.pattern THEN 0.5 ELSE 0 END + 0.2 / (1 + length(e.search) / 50.0) AS score,
         count(*) OVER () AS total
    FROM ncm_entries e CROSS JOIN t
   WHERE e.search_tsv @@ t.query OR e.search LIKE t.pattern
   ORDER BY score DESC, e.code
   LIMIT $2 OFFSET $3`

/**
 * Searches the official descriptions (Portuguese, without regard to accents or case): words
 * matched with their Portuguese stems (full text), or the query found as it is inside a description;
 * best first (full-text rank normalised by length, a bonus for the query found as it is, and one for short descriptions).
 */
export async function searchNcm(db: Queryable, query: string, limit: number, offset: number): Promise<{ items: NcmSearchHit[]; total: number }> {
  const { rows } = await db.query({ name: 'ncm-search', text: SEARCH_SQL, values: [query.trim(), limit, offset] })
  if (rows.length === 0) return { items: [], total: 0 }
  const ancestors = new Map<string, string>()
  const wanted = [...new Set(rows.flatMap((r) => pathCodes(r.code).slice(0, -1)))]
  if (wanted.length) {
    const found = await db.query({ name: 'ncm-ancestors', text: 'SELECT code, description FROM ncm_entries WHERE code = ANY($1::text[])', values: [wanted] })
    for (const r of found.rows) ancestors.set(r.code, r.description)
  }
  const items = rows.map((r) => {
    const path = pathCodes(r.code).slice(0, -1).filter((c) => ancestors.has(c)).map((c) => ({ code: c, description: ancestors.get(c)! }))
    path.push({ code: r.code, description: r.description })
    return { code: r.code, code_formatted: formatNcmCode(r.code), description: r.description, path, is_item: r.code.length === 8, in_force: r.in_force, score: Math.round(Number(r.score) * 1000) / 1000 }
  })
  return { items, total: Number(rows[0].total) }
}

/** The version of the table in the database; null when there is none. */
export async function ncmTableInfo(db: Queryable): Promise<{ table_version: string; entries: number; items: number; imported_at: Date; source: string; sha256: string } | null> {
  const { rows } = await db.query('SELECT act, update_text, imported_at, entries, items, source, sha256 FROM ncm_table')
  return rows[0] ? { table_version: tableVersion(rows[0]), entries: rows[0].entries, items: rows[0].items, imported_at: rows[0].imported_at, source: rows[0].source, sha256: rows[0].sha256 } : null
}
