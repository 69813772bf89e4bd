import type pg from 'pg'
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { inTransaction } from '../../db/queryable.js'
import { NcmFileError, parseSiscomexJson, type NcmFile, type ParseOptions } from './siscomex-json.js'
import { tableVersion } from './ncm-check.js'

// Any fixed number: an import waits for another one in progress (and instances loading the
// snapshot at start wait for each other, then find the table filled and do nothing).
export const NCM_IMPORT_LOCK = 7_205_015
/** The official file is ~3.3 MB; anything much larger is not it. */
export const NCM_MAX_BYTES = 64 * 1_048_576
const BATCH = 5_000

export interface NcmSource {
  bytes: Buffer
  /** The path or URL it was read from. */
  source: string
  /** sha256 of the bytes as read (before gunzip). */
  sha256: string
}

export interface NcmImportResult {
  imported: boolean
  entries: number
  items: number
  table_version: string
  ms: number
}

/** Reads a file or an http(s) URL, at most `maxBytes`; gunzips it when it is gzip (by content, not by name). */
export async function readNcmSource(source: string, maxBytes = NCM_MAX_BYTES): Promise<NcmSource> {
  let raw: Buffer
  if (/^https?:\/\//i.test(source)) raw = await download(source, maxBytes)
  else {
    const info = await stat(source).catch((err) => { throw new NcmFileError(`cannot read ${source}: ${(err as Error).message}`) })
    if (!info.isFile()) throw new NcmFileError(`${source} is not a file`)
    if (info.size > maxBytes) throw new NcmFileError(`${source} has ${info.size} bytes, more than the ${maxBytes} allowed`)
    raw = await readFile(source)
  }
  const sha256 = createHash('sha256').update(raw).digest('hex')
  let bytes = raw
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw, { maxOutputLength: maxBytes })
    } catch (err) {
      throw new NcmFileError(`${source}: bad gzip, or more than ${maxBytes} bytes once unpacked (${(err as Error).message})`)
    }
  }
  return { bytes, source, sha256 }
}

async function download(url: string, maxBytes: number): Promise<Buffer> {
  let response
  try {
    response = await request(url, { headersTimeout: 30_000, bodyTimeout: 60_000, headers: { accept: 'application/json' } })
  } catch (err) {
    throw new NcmFileError(`cannot fetch ${url}: ${(err as Error).message}`)
  }
  if (response.statusCode !== 200) {
    await response.body.dump()
    throw new NcmFileError(`${url} answered ${response.statusCode}`)
  }
  const declared = Number(response.headers['content-length'])
  if (declared > maxBytes) {
    response.body.destroy()
    throw new NcmFileError(`${url} announces ${declared} bytes, more than the ${maxBytes} allowed`)
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of response.body) {
    total += chunk.length
    if (total > maxBytes) {
      response.body.destroy()
      throw new NcmFileError(`${url} sent more than the ${maxBytes} bytes allowed`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/**
 * Replaces the whole table with the file's, in one transaction: readers see the old table until
 * the commit, then the new one; a failure leaves the old one as it was. With `onlyIfEmpty`, does
 * nothing when a table is already there (the snapshot at start).
 */
export async function importNcmTable(pool: pg.Pool, file: NcmFile, from: Omit<NcmSource, 'bytes'>, options: { onlyIfEmpty?: boolean } = {}): Promise<NcmImportResult> {
  const started = performance.now()
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [NCM_IMPORT_LOCK])
    if (options.onlyIfEmpty) {
      const { rows } = await client.query('SELECT act, update_text, imported_at, entries, items FROM ncm_table')
      if (rows[0]) return { imported: false, entries: rows[0].entries, items: rows[0].items, table_version: tableVersion(rows[0]), ms: performance.now() - started }
    }
    // DELETE, not TRUNCATE: readers keep the old rows until the commit instead of waiting on a lock.
    await client.query('DELETE FROM ncm_entries')
    for (let i = 0; i < file.entries.length; i += BATCH) {
      const batch = file.entries.slice(i, i + BATCH)
      await client.query(
        `INSERT INTO ncm_entries (code, description, starts_on, ends_on, act, search)
         SELECT code, description, starts_on, ends_on, act, lower(unaccent(description))
           FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::text[]) AS e (code, description, starts_on, ends_on, act)`,
        [batch.map((e) => e.code), batch.map((e) => e.description), batch.map((e) => e.starts_on), batch.map((e) => e.ends_on), batch.map((e) => e.act)],
      )
    }
    const { rows } = await client.query(
      `INSERT INTO ncm_table (one, act, update_text, imported_at, entries, items, source, sha256)
       VALUES (true, $1, $2, clock_timestamp(), $3, $4, $5, $6)
       ON CONFLICT (one) DO UPDATE SET act = EXCLUDED.act, update_text = EXCLUDED.update_text, imported_at = EXCLUDED.imported_at,
         entries = EXCLUDED.entries, items = EXCLUDED.items, source = EXCLUDED.source, sha256 = EXCLUDED.sha256
       RETURNING act, update_text, imported_at`,
      [file.act, file.update_text, file.entries.length, file.items, from.source, from.sha256],
    )
    return { imported: true, entries: file.entries.length, items: file.items, table_version: tableVersion(rows[0]), ms: performance.now() - started }
  })
}

/** Reads, validates and imports a file or URL: nothing changes unless the whole file is good. */
export async function importNcmFrom(pool: pg.Pool, source: string, options: ParseOptions & { onlyIfEmpty?: boolean } = {}): Promise<NcmImportResult> {
  const read = await readNcmSource(source)
  const file = parseSiscomexJson(read.bytes, options)
  return importNcmTable(pool, file, read, options)
}
