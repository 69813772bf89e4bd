/**
 * The environment as every entry point reads it. A variable set to an empty value (as deployment
 * templates and .env files often leave them) counts as not set, so that its default applies.
 * Give it to env-schema with `env: false`: by default env-schema merges process.env, empty values
 * included, back in under the data it is given.
 */
export function environment(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(source).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''))
}
