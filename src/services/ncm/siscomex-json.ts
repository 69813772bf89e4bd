import { NCM_DIGITS } from './ncm-codes.js'

// The nomenclature as Siscomex publishes it (portalunico.siscomex.gov.br, "download/json"):
// {"Data_Ultima_Atualizacao_NCM": "Vigente em 13/05/2025", "Ato": "Resolução Camex nº 641/2024",
//  "Nomenclaturas": [{"Codigo": "8542.31.90", "Descricao": "Outros", "Data_Inicio": "01/04/2022",
//  "Data_Fim": "31/12/9999", "Tipo_Ato_Ini": "Res Camex", "Numero_Ato_Ini": "272", "Ano_Ato_Ini": "2021"}, ...]}

export interface NcmEntry {
  /** Digits only: "85423190". */
  code: string
  /** Plain text: HTML tags removed, entities decoded, spaces collapsed. */
  description: string
  /** YYYY-MM-DD. */
  starts_on: string
  /** YYYY-MM-DD, or null for 31/12/9999 (in force). */
  ends_on: string | null
  act: string
}

export interface NcmFile {
  act: string
  update_text: string
  entries: NcmEntry[]
  /** How many entries have 8 digits. */
  items: number
}

/** A file that cannot be imported: the message names the entry and the problem. */
export class NcmFileError extends Error {
  override name = 'NcmFileError'
}

export interface ParseOptions {
  /** Fewer entries than this is refused as a truncated or wrong file (the official table has ~15,000). */
  minEntries?: number
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' }

/** The description as plain text: tags dropped (a <br> or block end becomes a space), entities decoded, spaces collapsed. */
export function stripHtml(html: string): string {
  return html
    .replace(/<\s*(br|\/p|\/div|\/li)\b[^>]*>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
      if (name[0] === '#') {
        const n = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10)
        return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : ' '
      }
      return ENTITIES[name.toLowerCase()] ?? whole
    })
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
}

/** "31/12/2024" → "2024-12-31"; null when it is not a real calendar date. */
export function parseBrazilianDate(text: string): string | null {
  const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(text.trim())
  if (!m) return null
  const [, dd, mm, yyyy] = m
  const day = Number(dd), month = Number(mm), year = Number(yyyy)
  const date = new Date(Date.UTC(year, month - 1, day))
  if (year < 1900 || date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null
  return `${yyyy}-${mm}-${dd}`
}

const IN_FORCE = '9999-12-31'
const CODE_SHAPE = /^[0-9]{2}(\.?[0-9]{2}(\.?[0-9]{1,2}(\.?[0-9]{1,2})?)?)?$/

/** Parses and validates a Siscomex NCM file (its text or its bytes); throws NcmFileError saying which entry is wrong and why. */
export function parseSiscomexJson(input: string | Buffer, options: ParseOptions = {}): NcmFile {
  const minEntries = options.minEntries ?? 1000
  const text = (typeof input === 'string' ? input : input.toString('utf8')).replace(/^\uFEFF/, '')
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new NcmFileError(`not JSON: ${(err as Error).message}`)
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new NcmFileError('not a Siscomex NCM file: the top level is not an object')
  const top = doc as Record<string, unknown>
  if (!Array.isArray(top.Nomenclaturas)) throw new NcmFileError('not a Siscomex NCM file: no "Nomenclaturas" list')
  const act = requiredText(top.Ato, 'the file\'s "Ato"')
  const updateText = requiredText(top.Data_Ultima_Atualizacao_NCM, 'the file\'s "Data_Ultima_Atualizacao_NCM"')
  const list = top.Nomenclaturas as unknown[]
  if (list.length < minEntries) throw new NcmFileError(`only ${list.length} entries in "Nomenclaturas" (at least ${minEntries} expected: the official table has about 15,000); refused as truncated or not the full table`)

  const entries: NcmEntry[] = []
  const seen = new Map<string, number>()
  let items = 0
  list.forEach((raw, index) => {
    const where = (code?: unknown) => `entry ${index + 1}${typeof code === 'string' ? ` (Codigo "${code}")` : ''}`
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new NcmFileError(`${where()}: not an object`)
    const e = raw as Record<string, unknown>
    if (typeof e.Codigo !== 'string' || !e.Codigo.trim()) throw new NcmFileError(`${where()}: "Codigo" is missing or not text`)
    const given = e.Codigo.trim()
    if (!CODE_SHAPE.test(given)) throw new NcmFileError(`${where(given)}: "Codigo" is not an NCM code (2 to 8 digits, dotted as 85, 85.42, 8542.3, 8542.31, 8542.31.9, 8542.31.90)`)
    const code = given.replace(/\./g, '')
    if (!NCM_DIGITS.test(code)) throw new NcmFileError(`${where(given)}: "Codigo" must have 2 to 8 digits`)
    const previous = seen.get(code)
    if (previous !== undefined) throw new NcmFileError(`${where(given)}: duplicate code ${code}, already given by entry ${previous + 1}`)
    seen.set(code, index)
    if (typeof e.Descricao !== 'string') throw new NcmFileError(`${where(given)}: "Descricao" is missing or not text`)
    const description = stripHtml(e.Descricao)
    if (!description) throw new NcmFileError(`${where(given)}: "Descricao" is empty`)
    if (description.length > 4000) throw new NcmFileError(`${where(given)}: "Descricao" is longer than 4000 characters`)
    const startsOn = dateField(e.Data_Inicio, 'Data_Inicio', where(given))
    const endsOn = dateField(e.Data_Fim, 'Data_Fim', where(given))
    if (endsOn < startsOn) throw new NcmFileError(`${where(given)}: "Data_Fim" ${e.Data_Fim} is before "Data_Inicio" ${e.Data_Inicio}`)
    for (const field of ['Tipo_Ato_Ini', 'Numero_Ato_Ini', 'Ano_Ato_Ini']) {
      if (e[field] !== undefined && e[field] !== null && typeof e[field] !== 'string' && typeof e[field] !== 'number') throw new NcmFileError(`${where(given)}: "${field}" is not text`)
    }
    const kind = String(e.Tipo_Ato_Ini ?? '').trim(), number = String(e.Numero_Ato_Ini ?? '').trim(), year = String(e.Ano_Ato_Ini ?? '').trim()
    const entryAct = [kind, [number, year].filter(Boolean).join('/')].filter(Boolean).join(' ')
    if (code.length === 8) items++
    entries.push({ code, description, starts_on: startsOn, ends_on: endsOn === IN_FORCE ? null : endsOn, act: entryAct })
  })
  // Every entry hangs under a chapter of the same file: a file cut or mixed up is refused.
  for (const entry of entries) {
    if (entry.code.length > 2 && !seen.has(entry.code.slice(0, 2))) throw new NcmFileError(`entry ${seen.get(entry.code)! + 1} (code ${entry.code}): its chapter ${entry.code.slice(0, 2)} is not in the file`)
  }
  if (items === 0) throw new NcmFileError('no 8-digit item in the file')
  return { act, update_text: updateText, entries, items }
}

function requiredText(value: unknown, what: string): string {
  if (typeof value !== 'string' || !value.trim()) throw new NcmFileError(`${what} is missing or empty`)
  return stripHtml(value)
}

function dateField(value: unknown, field: string, where: string): string {
  if (typeof value !== 'string') throw new NcmFileError(`${where}: "${field}" is missing or not text`)
  const date = parseBrazilianDate(value)
  if (!date) throw new NcmFileError(`${where}: "${field}" ${JSON.stringify(value)} is not a date DD/MM/YYYY`)
  return date
}
