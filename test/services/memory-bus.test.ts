import { test } from 'tap'
import { createMemoryBus } from '../../src/services/bus/memory-bus.js'

test('memory bus delivers matching channels in publish order, asynchronously', async (t) => {
  const bus = createMemoryBus()
  const received: string[] = []
  await bus.listen('progress-*', (channel, message) => received.push(`${channel}:${message}`))
  await bus.publish('progress-a', '1')
  await bus.publish('other', 'x')
  await bus.publish('progress-b', '2')
  t.same(received, [], 'nothing is delivered synchronously')
  await new Promise((r) => setImmediate(r))
  t.same(received, ['progress-a:1', 'progress-b:2'])
  await bus.close()
  await t.rejects(bus.publish('progress-a', '3'), /closed/)
})
