import type { ClassificationFields } from './classification-result.js'
import { storableText } from './storable-text.js'

/*
 * The answer of the real AI server's manager agent (Titus-System/Nexa-AI-Agents), read from the
 * text the server publishes in place of a `Result` object.
 *
 * What that text is, at commit c0872a79a88cb6da994f70dfffbecdf7faac09e4:
 * - agents/agents/manager_agent.py execute() returns `agent(prompt)`: smolagents 1.21.3
 *   MultiStepAgent.__call__, which renders the manager's final answer into the prompt's
 *   `managed_agent.report` template (agents/prompts/manager_agent/system_prompt.yaml):
 *     "Here is the response from your managed agent '{{name}}':\n{{final_answer}}"
 *   and, as the manager is built with provide_run_summary=True, appends
 *     "\n\nFor more detail, find below a summary of this agent's work:\n<summary_of_work>\n…"
 *   with the run's messages (the task text with its example `input_data`, the tool calls, the
 *   other agents' observations): none of that is the answer, so it is never read here.
 * - {{final_answer}} is whatever the model passed to `final_answer`, rendered by Jinja with
 *   str(): a JSON string (json.dumps), a JSON text in a ```json fence (the prompt's
 *   final_answer.post_messages asks for one), or a dict, which str() writes as a Python repr
 *   ({'part_number': 'LM358N', 'ex': '', 'x': None, 'ok': True}). Each is read here.
 * - The system prompt's "Required Output Schema" is
 *     {"part_number", "supplier", "specifications": {…}, "description",
 *      "classification": [{"ncm": "code", "ex": "code", "confidence": "score"} ×3]}
 *   "Classification array should contain 3 entries when successful, empty array when failed";
 *   the classificator agent returns its pairs "sorted by descending similarity", with the keys
 *   ncm_code/ex_code/similarity (and query_chroma with ncm/ex/similarity), so those are read too.
 *
 * Only a JSON (or Python-literal) object is read, with a real JSON parser; an NCM code written in
 * prose is never taken, so no code is guessed from text.
 */

/** At most this many characters of an answer's text are looked at. */
export const MAX_ANSWER_SCAN = 100_000
/** At most this many `{` are tried as the start of an object… */
const MAX_STARTS = 200
/** …and at most this many characters scanned or parsed in all, whatever the text. */
const MAX_WORK = 1_000_000
/** Classification entries looked at in one answer. */
const MAX_CANDIDATES = 20

const SUMMARY_MARKER = "For more detail, find below a summary of this agent's work:"
const REPORT_HEADER = /Here is the (?:response|final answer) from your managed agent '[^'\n]{0,100}':/

const LIMITS = { partnumber: 100, description: 10_000, name: 300 }

export type AgentAnswerOutcome =
  | { ok: true; fields: ClassificationFields; /** classification entries the answer held (the best one is kept) */ candidates: number }
  | { ok: false; reason: string; partnumber: string | null; /** whether any JSON answer was found in the text at all */ found: boolean }

/** True when the text is the smolagents report of the manager agent (whether or not it holds a usable answer). */
export function isAgentReport(text: string): boolean {
  return REPORT_HEADER.test(text.slice(0, 1_000))
}

/** Reads the agent's answer out of its text: the fields to store, or why there are none. */
export function readAgentText(text: string): AgentAnswerOutcome {
  const answer = findAgentAnswer(text)
  if (!answer) return { ok: false, reason: "the AI server's answer has no JSON object to read an NCM code from", partnumber: null, found: false }
  return readAgentObject(answer)
}

/** Maps an agent answer object (already parsed) into the fields to store. */
export function readAgentObject(answer: Record<string, unknown>): AgentAnswerOutcome {
  const partnumber = agentPartnumber(answer.part_number ?? answer.partnumber)
  const entries = candidatesOf(answer)
  if (!entries) return { ok: false, reason: "the AI server's answer holds no NCM code: it has no classification", partnumber, found: true }
  if (entries.length === 0) return { ok: false, reason: "the AI server's answer holds no NCM code: its classification list is empty", partnumber, found: true }

  // The best candidate: the one with the highest confidence, the first of equals (the list
  // comes sorted best first, so with no or equal confidences the first valid entry is kept).
  // ClassificationFields holds one code: the other candidates are not stored.
  let best: { ncm: string; ex: string | null; confidence: number | null } | null = null
  let refused: unknown = undefined
  for (const entry of entries.slice(0, MAX_CANDIDATES)) {
    const e = typeof entry === 'string' || typeof entry === 'number' ? { ncm: entry } : isRecord(entry) ? entry : null
    if (!e) continue
    const rawNcm = e.ncm ?? e.ncm_code
    const ncm = ncmDigits(rawNcm)
    if (!ncm) {
      if (refused === undefined && rawNcm !== undefined && rawNcm !== null && rawNcm !== '') refused = rawNcm
      continue
    }
    const confidence = readConfidence(e.confidence ?? e.similarity ?? e.confidence_score)
    if (!best || (confidence !== null && (best.confidence === null || confidence > best.confidence))) {
      best = { ncm, ex: readEx(e.ex ?? e.ex_code ?? e.exception), confidence }
    }
  }
  if (!best) {
    const shown = refused === undefined ? '' : `: ${JSON.stringify(refused)?.slice(0, 40)} is not an 8-digit NCM code`
    return { ok: false, reason: `the AI server's answer holds no NCM code${shown}`, partnumber, found: true }
  }

  return {
    ok: true,
    candidates: entries.length,
    fields: {
      partnumber,
      ncm: best.ncm,
      ex: best.ex,
      nve: agentText(answer.nve, 20),
      description: agentDescription(answer.description),
      manufacturer: manufacturerOf(answer),
      confidence: best.confidence,
    },
  }
}

/**
 * The agent's answer object in its text: the first object (by where it starts) that holds a
 * classification (or an NCM code), else the first that names a part number, else null. Objects
 * are cut out by a scan for balanced braces that knows quoted strings, then parsed as JSON, or as
 * a Python literal turned into JSON. The work is bounded: MAX_ANSWER_SCAN characters of text,
 * MAX_STARTS starting braces, MAX_WORK characters scanned and parsed.
 */
export function findAgentAnswer(text: string): Record<string, unknown> | null {
  let scope = text.length > MAX_ANSWER_SCAN ? text.slice(0, MAX_ANSWER_SCAN) : text
  const summary = scope.indexOf(SUMMARY_MARKER)
  if (summary >= 0) scope = scope.slice(0, summary)

  let work = 0
  let starts = 0
  let weak: Record<string, unknown> | null = null
  let from = 0
  while (starts < MAX_STARTS && work < MAX_WORK) {
    const open = scope.indexOf('{', from)
    if (open < 0) break
    starts++
    const close = matchingBrace(scope, open, MAX_WORK - work)
    work += close.scanned
    if (close.at < 0) {
      from = open + 1
      continue
    }
    const source = scope.slice(open, close.at + 1)
    work += source.length * 2
    const value = parseObject(source)
    if (value === undefined) {
      // Not an object as a whole: an object may still start inside it.
      from = open + 1
      continue
    }
    const found = answerIn(value)
    if (found.strong) return found.strong
    weak ??= found.weak
    from = close.at + 1
  }
  return weak
}

/** A classification list, or the object itself when it carries its NCM code at the top. */
function candidatesOf(o: Record<string, unknown>): unknown[] | null {
  for (const key of ['classification', 'classifications', 'results']) {
    const v = o[key]
    if (Array.isArray(v)) return v
    if (isRecord(v)) return [v]
  }
  if ('ncm' in o || 'ncm_code' in o) return [o]
  return null
}

/** The strong answer (has a classification) or weak one (names a part number) in a parsed value, a few levels deep at most. */
function answerIn(value: unknown): { strong: Record<string, unknown> | null; weak: Record<string, unknown> | null } {
  let weak: Record<string, unknown> | null = null
  let level: unknown[] = [value]
  let visited = 0
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    const next: unknown[] = []
    for (const v of level) {
      if (++visited > 2_000) return { strong: null, weak }
      if (Array.isArray(v)) {
        next.push(...v.slice(0, 50))
        continue
      }
      if (!isRecord(v)) continue
      if (candidatesOf(v)) return { strong: v, weak }
      if (!weak && ('part_number' in v || 'partnumber' in v)) weak = v
      next.push(...Object.values(v).slice(0, 50))
    }
    level = next
  }
  return { strong: null, weak }
}

/**
 * Where the `{` at `open` closes: `at` is -1 when it does not within the text or the budget.
 * Strings in double or single quotes (JSON, Python repr) are skipped with their escapes.
 */
function matchingBrace(s: string, open: number, budget: number): { at: number; scanned: number } {
  let depth = 0
  let quote: string | null = null
  const end = Math.min(s.length, open + Math.max(budget, 0))
  for (let i = open; i < end; i++) {
    const c = s[i]
    if (quote) {
      if (c === '\\') i++
      else if (c === quote) quote = null
      continue
    }
    if (c === '"' || c === "'") quote = c
    else if (c === '{') depth++
    else if (c === '}' && --depth === 0) return { at: i, scanned: i - open + 1 }
  }
  return { at: -1, scanned: end - open }
}

/** The object a candidate text holds: strict JSON first, then a Python literal; undefined when it is neither. */
function parseObject(source: string): Record<string, unknown> | undefined {
  for (const attempt of [source, pythonLiteralAsJson(source)]) {
    if (attempt === null) continue
    try {
      const value: unknown = JSON.parse(attempt)
      return isRecord(value) ? value : undefined
    } catch {
      // try the next reading
    }
  }
  return undefined
}

/**
 * A Python literal (what str() of a dict gives), or JSON with the slips a model makes, rewritten as
 * JSON text for JSON.parse: strings in single or double quotes with Python escapes, None/True/False,
 * trailing commas, and `#` or `//` comments. Anything else (a call, a tuple, nan) gives null. Never
 * evaluates anything.
 */
export function pythonLiteralAsJson(src: string): string | null {
  const out: string[] = []
  let comma = -1 // where in `out` the last comma is, while nothing but blanks followed it
  let i = 0
  while (i < src.length) {
    const c = src[i]!
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
      out.push(c)
      i++
      continue
    }
    if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      const eol = src.indexOf('\n', i)
      i = eol < 0 ? src.length : eol
      continue
    }
    if (c === '}' || c === ']') {
      if (comma >= 0) out[comma] = ' '
      out.push(c)
      i++
    } else if (c === ',') {
      out.push(c)
      i++
      comma = out.length - 1
      continue
    } else if (c === '{' || c === '[' || c === ':') {
      out.push(c)
      i++
    } else if (c === '"' || c === "'") {
      const str = readPythonString(src, i)
      if (!str) return null
      out.push(JSON.stringify(str.value))
      i = str.end
    } else if (/[-+.\d]/.test(c)) {
      const m = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/.exec(src.slice(i, i + 64))
      if (!m) return null
      const n = Number(m[0])
      if (!Number.isFinite(n)) return null
      out.push(String(n))
      i += m[0].length
    } else {
      const m = /^[A-Za-z_]\w*/.exec(src.slice(i, i + 32))
      const word = m ? LITERAL_WORDS.get(m[0]) : undefined
      if (!m || !word) return null
      out.push(word)
      i += m[0].length
    }
    comma = -1
  }
  return out.join('')
}

const LITERAL_WORDS = new Map([['None', 'null'], ['null', 'null'], ['True', 'true'], ['true', 'true'], ['False', 'false'], ['false', 'false']])
const HEX = { 2: /^[0-9a-fA-F]{2}$/, 4: /^[0-9a-fA-F]{4}$/, 8: /^[0-9a-fA-F]{8}$/ } as Record<number, RegExp>
const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v', a: '\x07', '\\': '\\', "'": "'", '"': '"', '/': '/', '\n': '' }

/** The Python (or JSON) string literal opening at `start`: its value and where it ends, or null if it does not close. */
function readPythonString(src: string, start: number): { value: string; end: number } | null {
  const quote = src[start]
  let value = ''
  for (let i = start + 1; i < src.length; i++) {
    const c = src[i]!
    if (c === quote) return { value, end: i + 1 }
    if (c !== '\\') {
      value += c
      continue
    }
    const e = src[i + 1]
    if (e === undefined) return null
    const hexLength = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0
    if (hexLength) {
      const hex = src.slice(i + 2, i + 2 + hexLength)
      if (!HEX[hexLength]!.test(hex)) return null
      const code = parseInt(hex, 16)
      if (code > 0x10ffff) return null
      value += String.fromCodePoint(code)
      i += 1 + hexLength
    } else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(src.slice(i + 1, i + 4))![0]
      value += String.fromCharCode(parseInt(oct, 8))
      i += oct.length
    } else if (e in SIMPLE_ESCAPES) {
      value += SIMPLE_ESCAPES[e]
      i++
    } else {
      // Python keeps an unknown escape as it is.
      value += '\\' + e
      i++
    }
  }
  return null
}

/** 8 digits from "85423190", "8542.31.90", "NCM 8542.31.90" or 85423190; null otherwise. */
function ncmDigits(value: unknown): string | null {
  const digits = typeof value === 'string'
    ? value.trim().replace(/^NCM[\s:]*/i, '').replace(/[.\s-]/g, '')
    : typeof value === 'number' && Number.isInteger(value) ? String(value) : ''
  return /^\d{8}$/.test(digits) ? digits : null
}

/**
 * The Ex code: "01" from "01", "Ex 01", "ex-01" or 1. Empty, "nan" (a missing cell of the TIPI
 * table the real server loads with pandas and writes with str()) and 0/"0"/"00" (there is no
 * Ex 00; the classificator's examples write "0" for a code without one) are no Ex. A float-looking
 * "1.0" (pandas again) is 1.
 */
function readEx(value: unknown): string | null {
  const s = typeof value === 'number' && Number.isInteger(value) ? String(value) : typeof value === 'string' ? value : null
  if (s === null) return null
  const m = /^\s*(?:ex[\s:.-]*)?(\d{1,3})(?:\.0)?\s*$/i.exec(s)
  if (!m || /^0+$/.test(m[1]!)) return null
  return m[1]!
}

/** A confidence from 0 to 1, from 0.9, "0.9", "0,9" or "90%"; null for anything else or out of range. */
function readConfidence(value: unknown): number | null {
  let n: number | null = null
  if (typeof value === 'number') n = value
  else if (typeof value === 'string') {
    const m = /^\s*(\d{1,3}(?:[.,]\d+)?|[.,]\d+)\s*(%?)\s*$/.exec(value)
    if (m) n = Number(m[1]!.replace(',', '.')) / (m[2] ? 100 : 1)
  }
  return n !== null && Number.isFinite(n) && n >= 0 && n <= 1 ? n : null
}

/** "exact_value_from_input", so "None" (Python's str(None), for an input without one) names none. */
function agentPartnumber(value: unknown): string | null {
  const t = agentText(value, LIMITS.partnumber)
  return t === null || /^(?:none|null|n\/a)$/i.test(t) ? null : t.toUpperCase()
}

function agentDescription(value: unknown): string | null {
  if (typeof value !== 'string') return null
  const t = storableText(value).trim()
  if (t === '') return null
  return t.length <= LIMITS.description ? t : `${t.slice(0, LIMITS.description - 1)}…`
}

/**
 * The manufacturer, if the answer names one: the system prompt's schema has no such field (and
 * its `supplier` is not the manufacturer: "Do not confuse manufacturer with supplier"), but the
 * web search agent's JSON has "manufacturer", and the manager is told to put that JSON in
 * `specifications`.
 */
function manufacturerOf(answer: Record<string, unknown>): ClassificationFields['manufacturer'] {
  const specs = isRecord(answer.specifications) ? answer.specifications : {}
  for (const v of [answer.manufacturer, answer.fabricante, specs.manufacturer, specs.Manufacturer, specs.fabricante]) {
    const name = agentText(v, LIMITS.name)
    if (name && !/^(?:none|null|n\/a|unknown|not available|-)$/i.test(name)) return { name, address: null, country: null }
  }
  return null
}

/** A string field of the answer, trimmed, or null when it is absent, not a string, empty or too long. */
function agentText(value: unknown, max: number): string | null {
  if (typeof value !== 'string') return null
  const t = storableText(value).trim()
  return t !== '' && t.length <= max ? t : null
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
