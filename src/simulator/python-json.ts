/**
 * JSON text as Python's `json.dumps` writes it with its defaults (what the real AI server
 * publishes: app/extensions.py RedisPublisher calls flask.json.dumps outside an app context,
 * which is json.dumps): `", "` and `": "` separators, and every character outside printable
 * ASCII escaped as \uXXXX (ensure_ascii). Numbers are written as JavaScript writes them, so a
 * Python float such as 1.0 comes out as 1.
 */
export function pythonJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') return asciiOnly(JSON.stringify(value))
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    return `{${entries.map(([k, v]) => `${asciiOnly(JSON.stringify(k))}: ${pythonJsonDumps(v)}`).join(', ')}}`
  }
  throw new TypeError(`cannot write ${typeof value} as JSON`)
}

const asciiOnly = (json: string) => json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
