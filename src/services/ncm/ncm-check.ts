import type { Queryable } from '../../db/queryable.js'
import { NCM_DIGITS, ncmDigits, pathCodes } from './ncm-codes.js'

export type NcmCheckStatus = 'VALID' | 'UNKNOWN' | 'EXPIRED' | 'NOT_LEAF'

export interface NcmCheck {
  /**
   * VALID: an 8-digit item in force at the date. EXPIRED: in the table, but its end date has passed.
   * NOT_LEAF: in the table with fewer than 8 digits (a chapter, heading or subheading, not an item).
   * UNKNOWN: not in the table (not in force yet at the date counts as not in the table), or the
   * table is empty (then table_version is null).
   */
  status: NcmCheckStatus
  /** The act, its update text and the import time of the table checked against; null when there is no table. */
  table_version: string | null
  description: string | null
  /** From the chapter down to the entry itself, as present in the table (plain text). Empty when UNKNOWN. */
  path: Array<{ code: string; description: string }>
  /** The TIPI rate of the item (no Ex), in percent; null when not known or "NT". */
  ipi: number | null
}

export function tableVersion(row: { act: string; update_text: string; imported_at: Date }): string {
  return `${row.act}; ${row.update_text}; imported ${row.imported_at.toISOString()}`
}

// One indexed statement per check (the primary key for the code and its prefixes, the one-row
// version table, the IPI primary key): well under a millisecond, and always the table of the
// database, whichever instance imported it last. `at` is compared as a date in Brasília.
const CHECK_SQL = `
  SELECT t.act, t.update_text, t.imported_at, e.code, e.description,
         e.starts_on <= d.day AS started, (e.ends_on IS NOT NULL AND e.ends_on < d.day) AS ended,
         (SELECT rate FROM ncm_ipi i WHERE i.ncm = e.code AND i.ex = '') AS ipi
    FROM (SELECT (coalesce($2::timestamptz, now()) AT TIME ZONE 'America/Sao_Paulo')::date AS day) d
    LEFT JOIN ncm_table t ON true
    LEFT JOIN ncm_entries e ON t.one AND e.code = ANY($1::text[])
   ORDER BY length(e.code)`

/** Checks an NCM code (with or without dots) against the official table, at a date (now by default). */
export async function checkNcm(db: Queryable, code: string, at?: Date): Promise<NcmCheck> {
  const digits = ncmDigits(code)
  const unknown = (version: string | null): NcmCheck => ({ status: 'UNKNOWN', table_version: version, description: null, path: [], ipi: null })
  if (!NCM_DIGITS.test(digits)) {
    const { rows } = await db.query({ name: 'ncm-version', text: 'SELECT act, update_text, imported_at FROM ncm_table' })
    return unknown(rows[0] ? tableVersion(rows[0]) : null)
  }
  const { rows } = await db.query({ name: 'ncm-check', text: CHECK_SQL, values: [pathCodes(digits), at ?? null] })
  const first = rows[0]
  if (!first?.act) return unknown(null)
  const version = tableVersion(first)
  const entry = rows.find((r) => r.code === digits)
  if (!entry || !entry.started) return unknown(version)
  const path = rows.filter((r) => r.code !== null).map((r) => ({ code: r.code as string, description: r.description as string }))
  const status: NcmCheckStatus = entry.ended ? 'EXPIRED' : digits.length < 8 ? 'NOT_LEAF' : 'VALID'
  return { status, table_version: version, description: entry.description, path, ipi: entry.ipi === null ? null : Number(entry.ipi) }
}
