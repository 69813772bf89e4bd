import type { Queryable } from '../../db/queryable.js'

// STAND-IN until the official NCM table (issue 15, branch wt-ncm-table: migration 008 ncm_entries,
// the Siscomex snapshot import) is merged: that branch's file takes this one's place at merge.
// It knows no table, so it answers UNKNOWN with table_version null for every code.

/** A code checked against the official NCM table. */
export interface NcmCheck {
  /** VALID: a current leaf (8-digit item) of the table; UNKNOWN: not in it; EXPIRED: no longer in force; NOT_LEAF: a heading, not an item. */
  status: 'VALID' | 'UNKNOWN' | 'EXPIRED' | 'NOT_LEAF'
  /** The table's version the check was made against; null when no table is loaded. */
  table_version: string | null
  /** The official description (HTML stripped). */
  description: string | null
  /** The path from chapter to item, each with its official description. */
  path: Array<{ code: string; description: string }>
  /** The IPI rate (TIPI), in percent, when known. */
  ipi: number | null
}

export async function checkNcm(_db: Queryable, _code: string, _at?: Date): Promise<NcmCheck> {
  return { status: 'UNKNOWN', table_version: null, description: null, path: [], ipi: null }
}
