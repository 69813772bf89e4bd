import t0 from 'tap'
import { Redis } from 'ioredis'
import { startServices, startStack, eventually, type SimulatorSettings, type Stack } from '../helpers/stack.js'
import { classify as catalogueAnswer } from '../../src/simulator/catalog.js'
import { agentAnswer, executeDoneMessage } from '../../src/simulator/real-server-jobs.js'
import { pythonJsonDumps } from '../../src/simulator/python-json.js'

// Issue 12: no answer of the AI server is lost to what the real server does. Every behaviour runs
// against both simulator profiles: the contract (driven by per-part-number scenarios) and the real
// server's code as its authors meant it (driven by the fake agent's part-number tokens: SLOWn,
// AGENTERR, ALT, NOPN; src/simulator/real-server-jobs.ts).

const { test } = t0
const services = await startServices()
t0.teardown(() => services.stop())

// One second of the real server's own sleeps (its demo's pauses, SLOWn) and one agent run, here.
const SECOND_MS = 500
const AGENT_MS = 150
// Short enough that the silences below outlast it (4.5 s in the demo, 4 s in SLOW8).
const DEADLINE = '3s'

type Profile = { name: 'contract' | 'real-server'; simulator: SimulatorSettings }
const PROFILES: Profile[] = [
  { name: 'contract', simulator: { stepMs: 15 } },
  { name: 'real-server', simulator: { profile: 'real-server', realServer: { variant: 'as-intended', agentMs: AGENT_MS, secondMs: SECOND_MS } } },
]

for (const profile of PROFILES) {
  test(`${profile.name} simulator`, async (t) => {
    // AI_BATCH_SIZE 2: batches go to the AI server in several chunks, each on its own channel.
    const stack = await startStack(services, { simulator: profile.simulator, env: { AI_BATCH_SIZE: '2', JOB_DEADLINE: DEADLINE, JOB_SWEEP_INTERVAL: '200ms' } })
    t.teardown(() => stack.close())
    const token = await stack.login()
    const real = profile.name === 'real-server'
    const api = (method: string, path: string, body?: unknown) => stack.api(method, path, { token, body })
    const job = async (id: string) => (await api('GET', `/jobs/${id}`)).body
    const finished = (id: string) => eventually(async () => {
      const body = await job(id)
      return ['DONE', 'FAILED'].includes(body.status) ? body : undefined
    }, 90_000)
    /** A batch, once every item has its answer (a late one included). */
    const answered = (id: string) => eventually(async () => {
      const body = await job(id)
      return body.status === 'DONE' && body.items.every((i: any) => i.status !== 'PENDING') ? body : undefined
    }, 90_000)
    const batch = async (partnumbers: string[]) => {
      const res = await api('POST', '/classifications/batch', { partnumbers: partnumbers.map((partnumber) => ({ partnumber })) })
      t.equal(res.status, 202)
      return res.body
    }
    const item = (body: any, partnumber: string) => body.items.find((i: any) => i.partnumber === partnumber)
    /** The job was failed by its deadline first: task_results said so (a late answer may have revived it since). */
    const timedOutFirst = (id: string) => eventually(() => stack.taskResults.find((m) => m.job_id === id && m.status === 'failed' && /^Timed out/.test(m.error)), 60_000)
    const reasons = (result: any) => result.review_reasons.map((r: any) => r.code)

    await t.test('1. a late answer revives a job failed by the deadline: stored, DONE, a new task_results message', async (t) => {
      // The contract: the result comes 8 s after the first progress. The real server: its demo
      // part numbers answer after a silence of 4 + 5 of its seconds.
      const pn = real ? 'CL10C330JB8NNNC' : 'LATE-SINGLE-1'
      if (!real) await stack.scenario(pn, { steps: 1, stepMs: 4_000 })
      const started = await api('POST', '/classifications', { partnumber: pn, reclassify: true })
      t.equal(started.status, 202)
      const timedOut = await timedOutFirst(started.body.id)
      t.match(timedOut.error, /^Timed out: no word from the AI server for 3 s/, 'failed by the deadline first')
      const done = await eventually(async () => {
        const body = await job(started.body.id)
        return body.status === 'DONE' ? body : undefined
      }, 60_000)
      t.match(done, { status: 'DONE', timed_out: false, error: null }, 'the late answer turned it DONE')
      t.equal(done.result.ncm, real ? '85322410' : catalogueAnswer(pn).ncm, 'with the answer stored')
      t.equal(done.result.status, 'ACTIVE', 'accepted as the part number\'s classification')
      const messages = await eventually(() => {
        const mine = stack.taskResults.filter((m) => m.job_id === started.body.id)
        return mine.length >= 2 ? mine : undefined
      })
      t.same(messages.map((m) => m.status), ['failed', 'done'], 'task_results told failed, then done for the same job')
      t.equal(messages[1]!.result.ncm, done.result.ncm)
    })

    await t.test('1. a late answer to a batch revives its item and the batch', async (t) => {
      const [first, slow] = real ? ['L-1', 'L-2-SLOW8'] : ['LATE-B-1', 'LATE-B-2']
      if (!real) await stack.scenario(first, { stepMs: 6_000 })
      const started = await batch([first, slow])
      await timedOutFirst(started.id)
      const done = await eventually(async () => {
        const body = await job(started.id)
        return body.items.every((i: any) => i.status === 'DONE') ? body : undefined
      }, 90_000)
      t.match(done, { status: 'DONE', timed_out: false, error: null })
      t.same(done.items.map((i: any) => [i.partnumber, i.status, i.result?.status]), [[first, 'DONE', 'ACTIVE'], [slow, 'DONE', 'ACTIVE']], 'both answers stored, the late one too')
      const messages = await eventually(() => {
        const mine = stack.taskResults.filter((m) => m.job_id === started.id)
        return mine.at(-1)?.status === 'done' ? mine : undefined
      })
      t.equal(messages[0]!.status, 'failed', 'task_results told the timeout first')
    })

    await t.test('1. a late failure takes the place of the deadline\'s: the user sees the AI server\'s own reason', async (t) => {
      const pn = real ? 'LF-AGENTERR-SLOW8' : 'LATE-FAIL-1'
      if (!real) await stack.scenario(pn, { stepMs: 6_000, failItems: [pn] })
      const started = await batch([pn])
      await timedOutFirst(started.id)
      const told = await eventually(async () => {
        const body = await job(started.id)
        return /^Erro ao processar/.test(item(body, pn).error) ? body : undefined
      }, 60_000)
      t.match(item(told, pn), { status: 'FAILED', error: `Erro ao processar partnumber${pn}` })
      t.same(told.unmatched_answers, [], 'taken by its item, not kept apart')
    })

    await t.test('2. a batch result naming another part number is stored for review on the item the text names', async (t) => {
      const [alt, plain] = real ? ['M-1-ALT', 'M-3'] : ['MIS-1', 'MIS-3']
      if (!real) await stack.scenario(alt, { result: { partnumber: 'MIS-1-ALT' } })
      const done = await answered((await batch([alt, plain])).id)
      const named = real ? 'M-1-ALT-ALT' : 'MIS-1-ALT'
      const altItem = item(done, alt)
      t.equal(altItem.status, 'DONE', 'the item holds the answer, not "never answered"')
      t.equal(altItem.result.status, 'PENDING', 'stored, not accepted')
      t.same(reasons(altItem.result), ['partnumber_mismatch'])
      t.equal(altItem.result.answered_partnumber, named)
      const history = await api('GET', `/partnumbers/${encodeURIComponent(alt)}`)
      t.notOk(history.body.classifications?.some((c: any) => c.status === 'ACTIVE'), 'the part number has no accepted classification from it')
      if (real) {
        // The real server's `done` for that item carries only the agent's text, naming M-1-ALT-ALT and no item: kept on the job.
        t.match(done.unmatched_answers, [{ reason: 'no_item', partnumber: named, result: { ncm: '85423190' } }], 'the answer no item took is kept and shown')
      } else {
        t.equal(item(done, plain).result.status, 'PENDING', 'the scenario names MIS-1-ALT for every item')
      }
    })

    await t.test('3. a part number with a space, answered by a result naming none, is told by the message text', async (t) => {
      const spaced = real ? ['BC847 NOPN', 'LM 358N'] : ['BC847 BLT1G', 'LM 358N']
      if (!real) await stack.scenario(spaced[0]!, { result: { partnumber: null } })
      const done = await answered((await batch(spaced)).id)
      for (const pn of spaced) {
        t.match(item(done, pn), { status: 'DONE', result: { status: 'ACTIVE' } }, `${pn}: answered and accepted`)
      }
    })

    await t.test('4. a batch error is attributed exactly, never to a part number containing the one it names', async (t) => {
      const [failing, containing] = real ? ['AGENTERR-10K', 'RAGENTERR-10K'] : ['FAIL10K', 'RFAIL10K']
      if (!real) await stack.scenario(failing, { failItems: [failing] })
      const done = await answered((await batch([failing, containing])).id)
      t.match(item(done, failing), { status: 'FAILED', error: `Erro ao processar partnumber${failing}` }, 'the item the error names failed with it')
      if (real) t.match(item(done, containing), { status: 'FAILED', error: `Erro ao processar partnumber${containing}` }, 'the other item got its own error')
      else t.match(item(done, containing), { status: 'DONE', result: { status: 'ACTIVE' } }, 'the other item kept its good result')
    })

    await t.test('5. a done carrying a result in the middle of a batch answers an item; it does not end the batch', async (t) => {
      const pns = real ? ['N-1', 'N-2', 'N-3'] : ['MID-1', 'MID-2', 'MID-3']
      // The contract: after the first item's answer, a `done` carrying that same result (what the real server sends for every item).
      if (!real) await stack.scenario(pns[0]!, { inject: [{ afterStep: 1, message: { status: 'done', result: catalogueAnswer(pns[0]!) } }] })
      const done = await answered((await batch(pns)).id)
      t.same(done.items.map((i: any) => [i.partnumber, i.status, i.result?.status]), pns.map((pn) => [pn, 'DONE', 'ACTIVE']), 'every item answered')
      t.same(done.unmatched_answers, [], 'the repeated answer is the item\'s, not an extra one')
    })

    await t.test('6. batch progress is the gateway\'s own: items answered of items, never backwards, a final word of its own', async (t) => {
      const pns = ['P-1', 'P-2', 'P-3', 'P-4', 'P-5']
      const started = await batch(pns)
      const seen: Array<{ current: number; total: number }> = []
      const done = await eventually(async () => {
        const body = await job(started.id)
        if (body.progress) seen.push({ current: body.progress.current, total: body.progress.total })
        return body.status === 'DONE' ? body : undefined
      }, 90_000, 5)
      t.ok(seen.every((p) => p.total === pns.length), 'the total is the batch\'s items, whatever the AI server\'s chunks say')
      t.ok(seen.every((p, i) => i === 0 || p.current >= seen[i - 1]!.current), `never backwards: ${seen.map((p) => p.current).join(' ')}`)
      t.same(done.progress, { current: 5, total: 5, message: `5 of 5 answered: ${done.counts.done} classified, ${done.counts.failed} failed` }, 'the gateway\'s last word, not the AI server\'s stale text')
    })

    await t.test('7. a single job\'s result for another part number is stored for review, never accepted as this one\'s', async (t) => {
      const pn = real ? 'BC847BLT1G' : 'WRONG-1'
      if (!real) await stack.scenario(pn, { result: { partnumber: 'WRONG-1-OTHER' } })
      const started = await api('POST', '/classifications', { partnumber: pn, reclassify: true })
      let other = 'WRONG-1-OTHER'
      if (real) {
        // The real server keeps job state in a module global shared by its threads: another job's
        // agent answer reaches this job's channel (what execute() publishes, byte for byte).
        other = 'OTHER-JOB-PN'
        const { rows: [{ channel }] } = await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [started.body.id])
        await eventually(async () => ((await job(started.body.id)).progress ? true : undefined))
        const publisher = new Redis(services.redis.url)
        t.teardown(() => publisher.quit())
        await publisher.publish(channel, pythonJsonDumps(executeDoneMessage('job-of-another-request', agentAnswer(other))))
      }
      const firstAnswer = await eventually(async () => {
        const body = await job(started.body.id)
        return body.result ? body : undefined
      }, 60_000)
      t.equal(firstAnswer.result.status, 'PENDING', 'the result naming another part number waits for review')
      t.same(reasons(firstAnswer.result), ['partnumber_mismatch'])
      t.equal(firstAnswer.result.answered_partnumber, other)
      if (real) {
        // Its own answer, when it comes, is the job's result; the stray one stays for review.
        const own = await eventually(async () => {
          const body = await job(started.body.id)
          return body.result?.status === 'ACTIVE' ? body : undefined
        }, 60_000)
        t.equal(own.result.ncm, '85412120', 'the demo\'s own answer')
        const history = await api('GET', `/partnumbers/${pn}`)
        t.ok(history.body.classifications.some((c: any) => c.status === 'PENDING' && c.answered_partnumber === other), 'the stray answer kept for review')
      } else {
        const again = await api('POST', '/classifications', { partnumber: pn })
        t.equal(again.body.source, 'AI', 'not answered from history: nothing was accepted')
        await finished(again.body.id)
      }
    })
  })
}
