import { isAgentReport, readAgentObject, readAgentText, type AgentAnswerOutcome } from './agent-answer.js'
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

export type ResultOutcome =
  | { ok: true; fields: ClassificationFields }
  | { ok: false; reason: string; /** the part number the unusable result names (its `partnumber`, or the agent answer's `part_number`), if any */ partnumber: string | null }

/** The part number a result names, usable or not: what an answer can be matched to its request by. */
export function resultPartnumber(outcome: ResultOutcome): string | null {
  return outcome.ok ? outcome.fields.partnumber : outcome.partnumber
}

const LIMITS = { partnumber: 100, description: 10_000, name: 300, address: 1_000, country: 200, nve: 20 }

function text(value: unknown, max: number): string | null | undefined {
  if (value === null || value === undefined) return null
  if (typeof value !== 'string') return undefined
  const trimmed = storableText(value).trim()
  if (trimmed === '') return null
  return trimmed.length <= max ? trimmed : undefined
}

/** A part number as a result names it: trimmed, upper case, at most 100 characters; null if none. */
function namedPartnumber(value: unknown): string | null {
  if (typeof value !== 'string') return null
  const t = storableText(value).trim()
  return t !== '' && t.length <= LIMITS.partnumber ? t.toUpperCase() : null
}

function fromAgent(outcome: AgentAnswerOutcome, ownPartnumber: string | null): ResultOutcome {
  if (!outcome.ok) return { ok: false, reason: outcome.reason, partnumber: ownPartnumber ?? outcome.partnumber }
  return { ok: true, fields: ownPartnumber ? { ...outcome.fields, partnumber: ownPartnumber } : outcome.fields }
}

/**
 * Accepts the contract's Result object, and the manager agent's answer the real AI server
 * (Titus-System/Nexa-AI-Agents) sends in its place (src/services/ai/agent-answer.ts):
 * - a string: JSON of a Result object (read as one), or else the agent's text
 *   (`partial_result.single_classification`);
 * - a Result object with no `ncm` whose `description` is the agent's text (its `done`);
 * - an object of the agent answer's own shape (`part_number`, `classification`, no `ncm`).
 */
export function normalizeResult(raw: unknown): ResultOutcome {
  let value = raw
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw)
    } catch {
      return fromAgent(readAgentText(raw), null)
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'result is not an object', partnumber: null }
  const r = value as Record<string, unknown>
  const named = namedPartnumber(r.partnumber)
  const noNcm = r.ncm === undefined || r.ncm === null || r.ncm === ''

  if (noNcm && !('partnumber' in r) && ('part_number' in r || 'classification' in r)) return fromAgent(readAgentObject(r), null)

  const ncmDigits = typeof r.ncm === 'string' ? r.ncm.replace(/[.\s-]/g, '') : typeof r.ncm === 'number' ? String(r.ncm) : ''
  if (!/^\d{8}$/.test(ncmDigits)) {
    if (noNcm && typeof r.description === 'string') {
      const agent = readAgentText(r.description)
      // A description that is neither the agent's report nor holds a JSON answer is the contract's own text.
      if (agent.ok || agent.found || isAgentReport(r.description)) return fromAgent(agent, named)
    }
    return { ok: false, reason: 'result has no valid 8-digit NCM code', partnumber: named }
  }

  const partnumber = text(r.partnumber, LIMITS.partnumber)
  const description = text(r.description, LIMITS.description)
  const name = text(r.fabricante, LIMITS.name)
  const address = text(r.endereco, LIMITS.address)
  const country = text(r.pais, LIMITS.country)
  const nve = text(r.nve, LIMITS.nve)
  for (const [field, v] of Object.entries({ partnumber, description, fabricante: name, endereco: address, pais: country, nve })) {
    if (v === undefined) return { ok: false, reason: `result field ${field} is not a string of acceptable length`, partnumber: named }
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
