import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { JobView } from '../../services/jobs/jobs-store.js'
import type { Identity } from '../../services/auth/accounts.js'

/** A job as answered to its owner: with the URL of its event stream, carrying a token scoped to it. */
export function withEventsUrl(app: FastifyInstance, identity: Identity, job: JobView) {
  const token = app.tokens.stream(identity, job.id)
  return { ...job, events_url: `${app.config.publicUrl ?? ''}/jobs/${job.id}/events?token=${token}` }
}

export function canSee(request: FastifyRequest, ownerId: string): boolean {
  return request.identity.role === 'ADMIN' || request.identity.id === ownerId
}
