import type { Queryable } from '../../db/queryable.js'
import type { ExtractedPart } from '../pdf/types.js'

export interface DocumentSummary {
  id: string
  owner_id: string
  filename: string
  size_bytes: number
  pages: number
  total: number
  created_at: Date
}

export interface DocumentView extends DocumentSummary {
  part_numbers: ExtractedPart[]
}

const SUMMARY = 'id, owner_id, filename, size_bytes, pages, total, created_at'

export async function insertDocument(
  db: Queryable,
  doc: { ownerId: string; filename: string; sizeBytes: number; sha256: Buffer; pages: number; partNumbers: ExtractedPart[]; content: Buffer | null },
): Promise<DocumentView> {
  const { rows } = await db.query(
    `INSERT INTO documents (owner_id, filename, size_bytes, sha256, pages, part_numbers, total, content)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${SUMMARY}, part_numbers`,
    [doc.ownerId, doc.filename, doc.sizeBytes, doc.sha256, doc.pages, JSON.stringify(doc.partNumbers), doc.partNumbers.length, doc.content],
  )
  return rows[0]
}

export async function getDocument(db: Queryable, id: string): Promise<DocumentView | undefined> {
  const { rows } = await db.query(`SELECT ${SUMMARY}, part_numbers FROM documents WHERE id = $1`, [id])
  return rows[0]
}

/** Newest first, keyset-paginated on (created_at, id); everyone's when ownerId is undefined. */
export async function listDocuments(db: Queryable, f: { ownerId?: string; before?: { createdAt: Date; id: string }; limit: number }): Promise<DocumentSummary[]> {
  const { rows } = await db.query(
    `SELECT ${SUMMARY} FROM documents
      WHERE ($1::uuid IS NULL OR owner_id = $1) AND ($2::timestamptz IS NULL OR (created_at, id) < (COALESCE((SELECT created_at FROM documents WHERE id = $3), $2), $3::uuid))
      ORDER BY created_at DESC, id DESC LIMIT $4`,
    [f.ownerId ?? null, f.before?.createdAt ?? null, f.before?.id ?? null, f.limit],
  )
  return rows
}
