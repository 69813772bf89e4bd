import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { MessageBus } from '../services/bus/message-bus.js'
import type { Timeline } from './timelines.js'

/** Publishes job timelines through the bus; `stop()` cancels every pending step so the process can exit at once. */
export class JobPlayer {
  readonly #stopped = new AbortController()

  constructor(
    private readonly bus: MessageBus,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Publishes steps [from, to) of `timeline` on `channel`, `stepMs` apart (step 0 at once).
   * Resolves true when all were published, false when stopped or when publishing failed; never rejects.
   */
  async play(channel: string, timeline: Timeline, stepMs: number, from = 0, to = timeline.length): Promise<boolean> {
    try {
      for (let step = from; step < to; step++) {
        if (step > 0) await sleep(stepMs, undefined, { signal: this.#stopped.signal })
        for (const message of timeline[step]!) {
          if (this.#stopped.signal.aborted) return false
          await this.bus.publish(channel, message)
        }
      }
      return true
    } catch (err) {
      if (!this.#stopped.signal.aborted) this.log.warn({ err, channel }, 'simulated job stopped: publishing failed')
      return false
    }
  }

  stop(): void {
    this.#stopped.abort()
  }
}
