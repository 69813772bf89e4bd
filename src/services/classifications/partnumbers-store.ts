import type { Queryable } from '../../db/queryable.js'
import { CLASSIFICATION_SELECT, toClassificationViews, type ClassificationView } from './classifications-store.js'

export interface PartnumberSummary {
  partnumber: string
  accepted: ClassificationView | null
  classifications: number
  last_classified_at: Date | null
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

/** Part numbers containing `q`, in code order, keyset-paginated on the code. */
export async function searchPartnumbers(db: Queryable, q: string, limit: number, after?: string): Promise<PartnumberSummary[]> {
  const { rows } = await db.query(
    `SELECT p.id, p.code, count(c.id)::int AS classifications, max(c.created_at) AS last_classified_at,
            (SELECT a.id FROM classifications a WHERE a.partnumber_id = p.id AND a.status = 'ACTIVE') AS accepted_id
       FROM partnumbers p LEFT JOIN classifications c ON c.partnumber_id = p.id
      WHERE p.code LIKE $1 AND ($2::text IS NULL OR p.code > $2)
      GROUP BY p.id ORDER BY p.code LIMIT $3`,
    [`%${escapeLike(q)}%`, after ?? null, limit],
  )
  const acceptedIds = rows.map((r) => r.accepted_id).filter(Boolean)
  const accepted = new Map<string, ClassificationView>()
  if (acceptedIds.length) {
    const found = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = ANY($1::uuid[])`, [acceptedIds])
    for (const view of await toClassificationViews(db, found.rows)) accepted.set(view.id, view)
  }
  return rows.map((r) => ({
    partnumber: r.code,
    accepted: r.accepted_id ? accepted.get(r.accepted_id) ?? null : null,
    classifications: r.classifications,
    last_classified_at: r.last_classified_at,
  }))
}

/** Every classification of a part number, newest first; undefined when the part number is unknown. */
export async function partnumberHistory(db: Queryable, code: string): Promise<ClassificationView[] | undefined> {
  const exists = await db.query('SELECT 1 FROM partnumbers WHERE code = $1', [code])
  if (!exists.rowCount) return undefined
  const { rows } = await db.query(`${CLASSIFICATION_SELECT} WHERE p.code = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT 500`, [code])
  return toClassificationViews(db, rows)
}
