import type pg from 'pg'
import { fileURLToPath } from 'node:url'
import { importNcmFrom, type NcmImportResult } from './ncm-import.js'

/** The snapshot shipped with the gateway (see data/ncm/SOURCES.md); the same path from src/ and dist/. */
export const NCM_SNAPSHOT = fileURLToPath(new URL('../../../data/ncm/ncm.json.gz', import.meta.url))

/**
 * Loads the shipped snapshot when the database has no NCM table yet. Cheap when it has one (one
 * query, the file is not read); instances starting together take the import lock in turn, and
 * the later ones find the table there and do nothing.
 */
export async function ensureNcmTable(pool: pg.Pool): Promise<NcmImportResult | null> {
  const { rowCount } = await pool.query('SELECT 1 FROM ncm_table')
  if (rowCount) return null
  const result = await importNcmFrom(pool, NCM_SNAPSHOT, { onlyIfEmpty: true })
  return result.imported ? result : null
}
