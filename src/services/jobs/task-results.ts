import type pg from 'pg'
import type { MessageBus } from '../bus/message-bus.js'
import { claimFinishedJob, withBatchItems, type JobView } from './jobs-store.js'
import type { ClassificationView } from '../classifications/classifications-store.js'

export const TASK_RESULTS_CHANNEL = 'task_results'

/** The contract's Result shape, for consumers of task_results. */
export function toContractResult(c: ClassificationView) {
  return {
    partnumber: c.partnumber,
    ncm: c.ncm,
    description: c.description,
    exception: c.ex,
    nve: c.nve,
    fabricante: c.manufacturer?.name ?? null,
    endereco: c.manufacturer?.address ?? null,
    pais: c.manufacturer?.country ?? null,
    confidence_score: c.confidence,
  }
}

export function taskResultMessage(job: JobView): Record<string, unknown> {
  const done = job.status === 'DONE'
  if (job.kind === 'BATCH') {
    const counts = job.counts ?? { total: 0, done: 0, failed: 0, pending: 0 }
    return {
      status: done ? 'done' : 'failed',
      message: `Lote concluido: ${counts.done} classificados, ${counts.failed} com falha de ${counts.total}`,
      job_id: job.id,
      partnumbers: (job.items ?? []).map((i) => i.partnumber),
      ...(done ? {} : { error: job.error }),
    }
  }
  const message: Record<string, unknown> = {
    status: done ? 'done' : 'failed',
    message: done
      ? `Classificacao concluida para ${job.partnumber}${job.source === 'HISTORY' ? ' (historico)' : ''}`
      : `Classificacao falhou para ${job.partnumber}: ${job.error}`,
    job_id: job.id,
    partnumber: job.partnumber,
  }
  if (done && job.result) message.result = toContractResult(job.result)
  if (!done) message.error = job.error
  return message
}

/**
 * Publishes a finished job's one message on task_results. The job is claimed as it is read
 * (result_published_at set), so concurrent publishers cannot both send it; if the publish
 * fails the claim is released and the sweeper tries again later.
 */
export async function publishTaskResult(pool: pg.Pool, bus: MessageBus, jobId: string): Promise<boolean> {
  const job = await claimFinishedJob(pool, jobId)
  if (!job) return false
  try {
    await withBatchItems(pool, job)
    await bus.publish(TASK_RESULTS_CHANNEL, JSON.stringify(taskResultMessage(job)))
    return true
  } catch (err) {
    await pool.query('UPDATE jobs SET result_published_at = NULL WHERE id = $1', [jobId]).catch(() => {})
    throw err
  }
}

/** Finished jobs whose message has not gone out (Redis was down, or the process died in between). */
export async function unpublishedJobIds(pool: pg.Pool, olderThanMs: number): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT id FROM jobs WHERE finished_at IS NOT NULL AND result_published_at IS NULL
        AND finished_at < now() - $1 * interval '1 millisecond' ORDER BY finished_at LIMIT 500`,
    [olderThanMs],
  )
  return rows.map((r) => r.id)
}
