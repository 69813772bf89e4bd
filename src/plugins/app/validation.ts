import fp from 'fastify-plugin'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'

// ajv-formats ships CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

/**
 * Two validators: JSON bodies are checked as sent (no type coercion: `12345` is not a part number),
 * while query strings, params and headers, which are text by nature, are coerced to their types.
 * Neither strips unknown properties: they are an error.
 */
export default fp(async (app) => {
  const options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const
  const bodies = addFormats(new Ajv({ ...options, coerceTypes: false }))
  const text = addFormats(new Ajv({ ...options, coerceTypes: 'array' }))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : text).compile(schema))
}, { name: 'validation' })
