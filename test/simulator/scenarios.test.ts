import { test } from 'tap'
import { BATCH_KEY, ScenarioStore } from '../../src/simulator/scenarios.js'

test('plan: no scenario means accept with defaults', async (t) => {
  t.same(new ScenarioStore(10).plan(['ANY']), { scenario: {}, start: 'accept' })
})

test('plan: the first key with a scenario wins, the batch key last', async (t) => {
  const store = new ScenarioStore(10)
  store.set(BATCH_KEY, { stepMs: 1 })
  store.set('b', { stepMs: 2 })
  store.set('C', { stepMs: 3 })
  t.same(store.plan(['A', 'c', 'B', BATCH_KEY]).scenario, { stepMs: 3 })
  t.same(store.plan(['A', BATCH_KEY]).scenario, { stepMs: 1 })
})

test('plan: failTimes counts down, and setting the scenario again resets it', async (t) => {
  const store = new ScenarioStore(10)
  store.set('X', { start: 'error', failTimes: 1 })
  t.same([store.plan(['X']).start, store.plan(['X']).start, store.plan(['X']).start], ['error', 'accept', 'accept'])
  store.set('X', { start: 'error', failTimes: 1 })
  t.equal(store.plan(['X']).start, 'error')
  store.set('Y', { start: 'reject' })
  t.same([store.plan(['Y']).start, store.plan(['Y']).start], ['reject', 'reject'], 'without failTimes, always')
})

test('the store is bounded', async (t) => {
  const store = new ScenarioStore(2)
  t.ok(store.set('A', {}))
  t.ok(store.set('B', {}))
  t.notOk(store.set('C', {}), 'full')
  t.ok(store.set('a', { steps: 1 }), 'replacing is allowed when full')
  store.clear()
  t.ok(store.set('C', {}))
})
