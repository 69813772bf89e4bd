import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { createUser, EmailTakenError, getUser, listUsers, updateUser } from '../../services/auth/accounts.js'
import { hashPassword } from '../../services/auth/passwords.js'
import { conflict, notFound } from '../../http-errors.js'
import { Email, NewPassword, Role, User } from '../../schemas/auth.js'
import { errorResponses, IdParams, PlainText } from '../../schemas/common.js'

/** User management, for administrators only. */
const users: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireAdmin)

  app.post('/users', {
    schema: {
      tags: ['users'], summary: 'Create a user (admin)',
      body: Type.Object({ email: Email, password: NewPassword, role: Type.Optional(Role) }, { additionalProperties: false }),
      response: { 201: Type.Ref(User), ...errorResponses(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    try {
      const user = await createUser(pool, { email: request.body.email, passwordHash: await hashPassword(request.body.password), role: request.body.role ?? 'USER' })
      return reply.code(201).header('location', `/users/${user.id}`).send(user)
    } catch (err) {
      if (err instanceof EmailTakenError) throw conflict('email_taken', 'A user with this email already exists')
      throw err
    }
  })

  app.get('/users', {
    schema: {
      tags: ['users'], summary: 'List users by email (admin)',
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
        after: Type.Optional({ ...PlainText(254), description: 'email of the last user of the previous page' }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(Type.Ref(User)), next_after: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses(400, 401, 403) },
    },
  }, async (request) => {
    const items = await listUsers(pool, { limit: request.query.limit, after: request.query.after })
    return { items, next_after: items.length === request.query.limit ? items.at(-1)!.email : null }
  })

  app.patch('/users/:id', {
    schema: {
      tags: ['users'], summary: 'Change a user\'s role or disable them (admin); disabling ends their sessions at once',
      params: IdParams,
      body: Type.Object({ role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: Type.Ref(User), ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const { id } = request.params
    if (id === request.identity.id && (request.body.disabled === true || request.body.role === 'USER')) {
      throw conflict('cannot_demote_self', 'Administrators cannot disable or demote themselves')
    }
    if (!(await getUser(pool, id))) throw notFound('user')
    const user = await updateUser(pool, id, request.body)
    if (!user) throw notFound('user')
    // Disabled, or no longer an admin: their open event streams are checked again at once.
    if (request.body.disabled === true || request.body.role === 'USER') await app.sessionRevocations.revoked({ userId: id })
    return user
  })
}

export default users
