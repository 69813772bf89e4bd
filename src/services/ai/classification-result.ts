import { storableText } from './storable-text.js'

/**
 * The AI server's `Result` object, checked and normalised into what we store.
 * Every field of a Result may be null; an NCM code is the one thing a result cannot do without.
 */
export interface ClassificationFields {
  partnumber: string | null
  ncm: string
  ex: string | null
  nve: string | null
  description: string | null
  manufacturer: { name: string; address: string | null; country: string | null } | null
  confidence: number | null
}

export type ResultOutcome = { ok: true; fields: ClassificationFields } | { ok: false; reason: string }

const LIMITS = { partnumber: 100, description: 10_000, name: 300, address: 1_000, country: 200, nve: 20 }

function text(value: unknown, max: number): string | null | undefined {
  if (value === null || value === undefined) return null
  if (typeof value !== 'string') return undefined
  const trimmed = storableText(value).trim()
  if (trimmed === '') return null
  return trimmed.length <= max ? trimmed : undefined
}

/** Accepts the Result object, or the rare plain string form when it holds JSON of one. */
export function normalizeResult(raw: unknown): ResultOutcome {
  let value = raw
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch {
      return { ok: false, reason: 'result is a string, not an object' }
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'result is not an object' }
  const r = value as Record<string, unknown>

  const ncmDigits = typeof r.ncm === 'string' ? r.ncm.replace(/[.\s-]/g, '') : typeof r.ncm === 'number' ? String(r.ncm) : ''
  if (!/^\d{8}$/.test(ncmDigits)) return { ok: false, reason: 'result has no valid 8-digit NCM code' }

  const partnumber = text(r.partnumber, LIMITS.partnumber)
  const description = text(r.description, LIMITS.description)
  const name = text(r.fabricante, LIMITS.name)
  const address = text(r.endereco, LIMITS.address)
  const country = text(r.pais, LIMITS.country)
  const nve = text(r.nve, LIMITS.nve)
  for (const [field, v] of Object.entries({ partnumber, description, fabricante: name, endereco: address, pais: country, nve })) {
    if (v === undefined) return { ok: false, reason: `result field ${field} is not a string of acceptable length` }
  }

  const exMatch = typeof r.exception === 'string' ? /^\s*(?:ex\s*)?(\d{1,3})\s*$/i.exec(r.exception) : null
  const confidence = typeof r.confidence_score === 'number' && r.confidence_score >= 0 && r.confidence_score <= 1 ? r.confidence_score : null

  return {
    ok: true,
    fields: {
      partnumber: partnumber ? partnumber.toUpperCase() : null,
      ncm: ncmDigits,
      ex: exMatch ? exMatch[1]! : null,
      nve: nve ?? null,
      description: description ?? null,
      manufacturer: name ? { name, address: address ?? null, country: country ?? null } : null,
      confidence,
    },
  }
}

/** 85412120 -> 8541.21.20, the way the NCM is written on paper. */
export function formatNcm(ncm: string): string {
  return `${ncm.slice(0, 4)}.${ncm.slice(4, 6)}.${ncm.slice(6, 8)}`
}
