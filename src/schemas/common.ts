import { Type, type TSchema } from '@sinclair/typebox'

export const Uuid = Type.String({ format: 'uuid' })
export const IdParams = Type.Object({ id: Uuid })
// Dates leave as ISO 8601 strings (the serializer converts Date objects).
export const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' })
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/** Every error body: the HTTP status, a stable machine code and a sentence for people. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String(),
  message: Type.String(),
  job_id: Type.Optional(Type.String()),
  ncm_check_status: Type.Optional(Type.String({ description: '422 ncm_not_valid: the status of the refused code in the official NCM table' })),
}, { $id: 'ErrorResponse' })

export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, Type.Ref(ErrorResponse)]))

/** Opaque cursor for keyset pagination. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' })),
}

/** Text fields from people: no control characters, and nothing PostgreSQL cannot store (NUL, lone surrogates). */
export const PlainText = (maxLength: number, minLength = 0) =>
  Type.String({ minLength, maxLength, pattern: '^(?:[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$' })
