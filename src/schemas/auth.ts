import { Type } from '@sinclair/typebox'
import { Timestamp, Uuid } from './common.js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../services/auth/passwords.js'

export const Email = Type.String({ format: 'email', maxLength: 254 })
export const Role = Type.Union([Type.Literal('ADMIN'), Type.Literal('USER')])
export const NewPassword = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH })

/** A user as responses show it: never a password hash. */
export const User = Type.Object({
  id: Uuid,
  email: Type.String(),
  role: Role,
  disabled: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'User' })

export const LoginBody = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }),
}, { additionalProperties: false })

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds' }),
  refresh_token: Type.String(),
  user: Type.Object({ id: Uuid, email: Type.String(), role: Role }),
})

export const RefreshBody = Type.Object({
  refresh_token: Type.Optional(Type.String({ minLength: 20, maxLength: 200 })),
}, { additionalProperties: false })
