// Scenario 1: open streams. N concurrent authenticated GET /jobs/:id/events on live jobs, held at
// once: resident memory per stream (process RSS before and after), Redis connections, and a
// liveness check (one progress message on every channel reaches its stream).
import { LoadPool, Publisher } from '../lib/load-pool.js'
import { fdHardLimit, openFds, rssBytes, sleep } from '../lib/procs.js'
import { check, round, versus } from '../lib/report.js'
import { startReference } from '../lib/reference.js'
import { channelsOf, closeStreams, openStreams, received, record, waitForDelivery, type StreamTarget } from '../lib/streams.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'

const PER_WORKER = 5_000
const TARGET_KB = 16

interface Held {
  opened: number
  failed: number
  errors: Record<string, number>
  openSeconds: number
  serverCount?: number
  rssBeforeMb: number
  rssAfterMb: number
  perStreamKb: number
  fdsBefore: number
  fdsAfter: number
  redisBefore?: Awaited<ReturnType<BenchContext['stack']['redisClients']>>
  redisAfter?: Awaited<ReturnType<BenchContext['stack']['redisClients']>>
  liveness: { published: number; received: number; behind: number; outOfOrder: number; stillOpen: number }
}

async function hold(ctx: BenchContext, pool: LoadPool, target: StreamTarget, ids: string[]): Promise<Held> {
  const { stack } = ctx
  // Warm-up: the code paths compiled and the pools filled, as in a process that has been serving.
  const warm = ids.slice(0, Math.min(500, ids.length))
  await openStreams(pool, target, warm, 200)
  await closeStreams(pool)
  await sleep(ctx.smoke ? 500 : 3_000)

  const rssBefore = await rssBytes(target.pid)
  const fdsBefore = await openFds(target.pid)
  const redisBefore = target.label === 'gateway' ? await stack.redisClients() : undefined
  ctx.log(`${target.label}: opening ${ids.length} streams (RSS before ${round(rssBefore / 2 ** 20)} MB)`)
  const opened = await openStreams(pool, target, ids, 400, 120_000)
  await sleep(ctx.smoke ? 1_000 : 5_000) // let the process settle (allocation after the connects, GC)
  const rssAfter = await rssBytes(target.pid)
  const fdsAfter = await openFds(target.pid)
  const redisAfter = target.label === 'gateway' ? await stack.redisClients() : undefined
  const serverCount = target.label === 'gateway' ? await stack.gatewayOpenStreams() : undefined

  // Liveness: one message on every channel, each must reach its stream.
  const publisher = await Publisher.start(stack.redisUrl, channelsOf(ids))
  await record(pool, true)
  const rate = ctx.smoke ? 1_000 : 5_000
  const published = await publisher.publish(rate, ids.length)
  await waitForDelivery(pool, published.published, 5_000, 60_000)
  const got = await received(pool, published.perChannel)
  await record(pool, false)
  await publisher.stop()
  await closeStreams(pool)

  return {
    opened: opened.opened,
    failed: opened.failed,
    errors: opened.errors,
    openSeconds: round(opened.elapsedMs / 1000, 2),
    serverCount,
    rssBeforeMb: round(rssBefore / 2 ** 20),
    rssAfterMb: round(rssAfter / 2 ** 20),
    perStreamKb: round((rssAfter - rssBefore) / 1024 / Math.max(1, opened.opened), 2),
    fdsBefore,
    fdsAfter,
    redisBefore,
    redisAfter,
    liveness: { published: published.published, received: got.progressEvents, behind: got.behind, outOfOrder: got.outOfOrder, stillOpen: got.open },
  }
}

export async function openStreamsScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  // Each stream is a descriptor in the server process; leave room for its pools, logs and listeners.
  const limit = await fdHardLimit()
  const wanted = ctx.smoke ? 300 : 19_000
  const count = Math.min(wanted, limit - 500)
  if (count < wanted) ctx.log(`hard descriptor limit ${limit}: holding ${count} streams instead of ${wanted}`)
  const workers = Math.max(2, Math.ceil(count / PER_WORKER))

  const gateway = await stack.startGateway(ctx.profile ? { profileName: 'open-streams' } : {})
  const ids = await stack.seedRunningJobs(count, 'streams')
  const pool = await LoadPool.start(workers)
  let ours: Held
  let reference: Held
  try {
    ours = await hold(ctx, pool, { label: 'gateway', pid: gateway.pid, port: gateway.port, headers: { authorization: `Bearer ${stack.token}` } }, ids)
    await stack.stopGateway()
    const ref = await startReference(stack.redisUrl)
    try {
      reference = await hold(ctx, pool, { label: 'reference', pid: ref.pid, port: ref.port, headers: {} }, ids)
    } finally {
      await ref.stop()
    }
  } finally {
    await pool.stop()
    await stack.deleteSeededJobs()
  }

  const allHeld = ours.opened === count && ours.failed === 0 && (ours.serverCount === undefined || ours.serverCount === count)
  const alive = ours.liveness.received === count && ours.liveness.behind === 0 && ours.liveness.stillOpen === count
  const redisSame = ours.redisBefore!.connected === ours.redisAfter!.connected
  const ratio = ours.perStreamKb / reference.perStreamKb
  return {
    name: 'open-streams',
    title: `1. Open streams: ${count} concurrent authenticated streams on live jobs (${workers} load processes)`,
    table: [
      ['metric', 'gateway', 'reference', 'gateway / reference'],
      ['streams held', `${ours.opened} of ${count}`, `${reference.opened} of ${count}`, '-'],
      versus('time to open all', ours.openSeconds, reference.openSeconds, 's'),
      ['RSS before -> after', `${ours.rssBeforeMb} -> ${ours.rssAfterMb} MB`, `${reference.rssBeforeMb} -> ${reference.rssAfterMb} MB`, '-'],
      versus('resident memory per stream', ours.perStreamKb, reference.perStreamKb, 'KB'),
      ['descriptors before -> after', `${ours.fdsBefore} -> ${ours.fdsAfter}`, `${reference.fdsBefore} -> ${reference.fdsAfter}`, '-'],
      ['Redis clients before -> after', `${ours.redisBefore!.connected} -> ${ours.redisAfter!.connected}`, '-', '-'],
      ['gateway Redis connections subscribed', String(ours.redisAfter!.gatewaySubscribed), '-', '-'],
      ['liveness: messages received / published', `${ours.liveness.received} / ${ours.liveness.published}`, `${reference.liveness.received} / ${reference.liveness.published}`, '-'],
    ],
    checks: [
      check('1. all streams held', `${count}`, `${ours.opened} held, ${ours.failed} failed${ours.serverCount === undefined ? '' : `, server counts ${ours.serverCount}`}`, allHeld, true),
      check('1. every held stream live', `${count} of ${count} got their message`, `${ours.liveness.received} (out of order ${ours.liveness.outOfOrder})`, alive, true),
      check('1. memory per open stream', `<= ${TARGET_KB} KB`, `${ours.perStreamKb} KB`, ours.perStreamKb <= TARGET_KB),
      check('1. memory per stream / reference', '<= 2.0', round(ratio, 2), ratio <= 2.0),
      check('1. Redis subscriber connections', 'exactly 1', ours.redisAfter!.gatewaySubscribed, ours.redisAfter!.gatewaySubscribed === 1, true),
      check('1. Redis clients do not grow with streams', `${ours.redisBefore!.connected}`, ours.redisAfter!.connected, redisSame, true),
    ],
    figures: { streams: count, load_processes: workers, gateway: ours, reference },
  }
}
