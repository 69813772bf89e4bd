import t0 from 'tap'
import { startServices, startStack } from '../helpers/stack.js'
const services = await startServices()
const stack = await startStack(services)
t0.teardown(async () => { await stack.close(); await services.stop() })
t0.test('x', async (t) => {
  for (const body of [{ email: 12345, password: 'x' }, { email: 'admin@nexa.test', password: 12345 }, { email: ['admin@nexa.test'], password: 'admin-password-123' }, { email: 'admin@nexa.test', password: true }, { email: 'admin@nexa.test', password: null }, {email: {}, password: 'x'}, null, 'abc', []]) {
    const r = await stack.api('POST', '/auth/login', { body })
    console.log(JSON.stringify(body), r.status, r.body)
  }
  const r = await stack.api('POST', '/auth/login', { body: '{"email":', headers: {} })
  console.log(r.status, r.body)
  t.pass()
})
