import t0 from 'tap'
import { startServices, startStack } from '../helpers/stack.js'

// The official NCM table over HTTP: the gateway loads the shipped snapshot at start (its database
// is empty), then answers look-ups and searches for signed-in users.

const { test } = t0
const services = await startServices()
const stack = await startStack(services)
t0.teardown(async () => { await stack.close(); await services.stop() })
const user = await stack.createUser('reviewer@nexa.test')

test('the snapshot was loaded at start', async (t) => {
  const { rows } = await stack.db.query('SELECT entries, items FROM ncm_table')
  t.same(rows, [{ entries: 15141, items: 10504 }])
})

test('GET /ncm/:code: the entry with its path, with or without dots', async (t) => {
  const res = await stack.api('GET', '/ncm/8542.31.90', { token: user.token })
  t.equal(res.status, 200)
  t.match(res.body, { code: '85423190', code_formatted: '8542.31.90', description: 'Outros', is_item: true, in_force: true, starts_on: '2022-04-01', ends_on: null, act: 'Res Camex 272/2021', ipi: null, ipi_rates: [] })
  t.same(res.body.path.map((p: any) => p.code), ['85', '8542', '85423', '854231', '85423190'])
  t.match(res.body.path[0].description, /^Máquinas, aparelhos e materiais elétricos/)
  t.match(res.body.table_version, /^Resolução Camex nº 641\/2024; Vigente em 13\/05\/2025; imported /)
  const plain = await stack.api('GET', '/ncm/85423190', { token: user.token })
  t.same(plain.body, res.body)
  const heading = await stack.api('GET', '/ncm/85.42', { token: user.token })
  t.equal(heading.status, 200)
  t.equal(heading.body.is_item, false)
  t.equal(heading.body.path.length, 2)
  t.same(res.body.items, [], 'an item has no items under it')
  const subheading = await stack.api('GET', '/ncm/8542.31', { token: user.token })
  t.same(subheading.body.items.map((i: any) => i.code_formatted), ['8542.31.10', '8542.31.20', '8542.31.90'].filter((c) => subheading.body.items.some((i: any) => i.code_formatted === c)),
    'a subheading lists its items in code order')
  t.ok(subheading.body.items.some((i: any) => i.code === '85423190' && i.description === 'Outros'), 'its "Outros" item among them, to be picked under it')
  t.equal(subheading.body.items_total, subheading.body.items.length)
  const chapter = await stack.api('GET', '/ncm/85', { token: user.token })
  t.ok(chapter.body.items_total > 500 && chapter.body.items.length === 500, `a chapter: ${chapter.body.items_total} items, the first 500 listed`)
})

test('GET /ncm/:code: 404 ncm_not_found for a code not in the table, 400 for one that is not a code', async (t) => {
  for (const code of ['8542.31.99', '99', '123456789']) {
    const res = await stack.api('GET', `/ncm/${code}`, { token: user.token })
    t.equal(res.status, 404, code)
    t.equal(res.body.code, 'ncm_not_found')
  }
  const bad = await stack.api('GET', '/ncm/abc', { token: user.token })
  t.equal(bad.status, 400)
})

test('the NCM routes need a signed-in user', async (t) => {
  t.equal((await stack.api('GET', '/ncm/85423190')).status, 401)
  t.equal((await stack.api('GET', '/ncm?q=transistor')).status, 401)
})

test('GET /ncm?q=: search without regard to accents or case, best first', async (t) => {
  const res = await stack.api('GET', '/ncm?q=transistor&limit=50', { token: user.token })
  t.equal(res.status, 200)
  t.ok(res.body.total > 0)
  t.ok(res.body.items.some((i: any) => i.code.startsWith('8541') && /transistor/i.test(i.path.map((p: any) => p.description).join(' '))), 'transistors of 8541')
  const scores = res.body.items.map((i: any) => i.score)
  t.same(scores, [...scores].sort((a: number, b: number) => b - a), 'ranked')
  const a = await stack.api('GET', '/ncm?q=circuitos%20integrados', { token: user.token })
  const b = await stack.api('GET', `/ncm?q=${encodeURIComponent('CIRCUÍTOS INTEGRADOS')}`, { token: user.token })
  const c = await stack.api('GET', `/ncm?q=${encodeURIComponent('Circuitos Integrados')}`, { token: user.token })
  t.ok(a.body.items.length > 0)
  t.same(b.body.items.map((i: any) => i.code), a.body.items.map((i: any) => i.code))
  t.same(c.body.items.map((i: any) => i.code), a.body.items.map((i: any) => i.code))
  t.ok(a.body.items.slice(0, 5).some((i: any) => i.code.startsWith('8542')), `8542 near the top: ${a.body.items.slice(0, 5).map((i: any) => i.code)}`)
  const accents = await stack.api('GET', `/ncm?q=${encodeURIComponent('eletronicos')}`, { token: user.token })
  t.ok(accents.body.items.some((i: any) => /eletrônicos/.test(i.description)), 'a query without accents finds descriptions with them')
  const none = await stack.api('GET', '/ncm?q=zzzzqqq', { token: user.token })
  t.same([none.status, none.body.items, none.body.total, none.body.next_cursor], [200, [], 0, null])
})

test('GET /ncm?q=: pages follow next_cursor without repeats, and end', async (t) => {
  const seen: string[] = []
  let cursor: string | null = null
  let total = 0
  let pages = 0
  do {
    const res: any = await stack.api('GET', `/ncm?q=circuitos&limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: user.token })
    t.equal(res.status, 200)
    total = res.body.total
    seen.push(...res.body.items.map((i: any) => i.code))
    cursor = res.body.next_cursor
    pages++
  } while (cursor && pages < 200)
  t.ok(total > 7, `more than one page (${total})`)
  t.equal(seen.length, Math.min(total, 1007))
  t.equal(new Set(seen).size, seen.length, 'no entry twice')
  const badCursor = await stack.api('GET', '/ncm?q=circuitos&cursor=bm90LWEtY3Vyc29y', { token: user.token })
  t.same([badCursor.status, badCursor.body.code], [400, 'invalid_cursor'])
  const short = await stack.api('GET', '/ncm?q=a', { token: user.token })
  t.equal(short.status, 400, 'a query of one character')
})

test('the routes are in the OpenAPI document', async (t) => {
  const res = await stack.api('GET', '/docs/json')
  t.equal(res.status, 200)
  t.ok(res.body.paths['/ncm'])
  t.ok(res.body.paths['/ncm/{code}'])
})
