import { readFileSync } from 'node:fs'

/** Every variable .env.example documents (set or commented out), each set to an empty value. */
export function everyVariableEmpty(): Record<string, string> {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const names = [...text.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1]!)
  return Object.fromEntries(names.map((name) => [name, '']))
}
