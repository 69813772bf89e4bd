import t0 from 'tap'
import { startServices, startStack, eventually, type Stack } from '../helpers/stack.js'
import { buildFixtures, simplePdf } from '../pdf/fixtures.js'

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { stepMs: 5 } })
// Tight limits, to show the refusals without megabytes of fixtures.
const limited = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl, env: { DOCUMENT_MAX_PAGES: '2', DOCUMENT_MAX_BYTES: '4096' } })
t0.teardown(async () => { await limited.close(); await stack.close(); await services.stop() })
const alice = await stack.createUser('alice@nexa.test')
const bob = await stack.createUser('bob@nexa.test')
const fixtures = await buildFixtures()
const englishTable = fixtures.find((f) => f.name.includes('english'))!

async function upload(target: Stack, token: string, file: Buffer | null, options: { field?: string; filename?: string; query?: string } = {}) {
  const form = new FormData()
  if (file) form.append(options.field ?? 'file', new Blob([new Uint8Array(file)], { type: 'application/pdf' }), options.filename ?? 'pedido.pdf')
  const response = await fetch(`${target.url}/documents${options.query ?? ''}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: response.status, body: await response.json() as any }
}

const documentCount = async () => (await stack.db.query('SELECT count(*)::int AS n FROM documents')).rows[0].n

test('an uploaded purchase order answers 201 with its part numbers, and is listed for its owner only', async (t) => {
  const res = await upload(stack, alice.token, englishTable.pdf, { filename: '../../etc/PO 4509.pdf' })
  t.equal(res.status, 201)
  t.equal(res.body.filename, 'PO 4509.pdf', 'no path in the stored name')
  t.equal(res.body.total, englishTable.expected.length)
  t.same(res.body.part_numbers.map((p: any) => p.partnumber), englishTable.expected.map((p) => p.partnumber))
  t.match(res.body.part_numbers[0], { page: Number, line: Number })
  const listed = await stack.api('GET', '/documents', { token: alice.token })
  t.ok(listed.body.items.some((d: any) => d.document_id === res.body.document_id))
  t.equal((await stack.api('GET', `/documents/${res.body.document_id}`, { token: alice.token })).body.total, englishTable.expected.length)
  t.equal((await stack.api('GET', `/documents/${res.body.document_id}`, { token: bob.token })).status, 404)
  t.same((await stack.api('GET', '/documents', { token: bob.token })).body.items, [])
  const { rows } = await stack.db.query('SELECT content IS NULL AS no_bytes FROM documents WHERE id = $1', [res.body.document_id])
  t.ok(rows[0].no_bytes, 'the file bytes are not stored unless DOCUMENT_STORE_FILES is on')
})

test('the older front end\'s field name `pedido` is accepted', async (t) => {
  const res = await upload(stack, alice.token, englishTable.pdf, { field: 'pedido' })
  t.equal(res.status, 201)
})

test('?classify=true extracts and classifies in one step; a subset can be classified from a stored document', async (t) => {
  const res = await upload(stack, alice.token, englishTable.pdf, { query: '?classify=true' })
  t.equal(res.status, 201)
  t.equal(res.body.job.kind, 'BATCH')
  t.equal(res.body.job.document_id, res.body.document_id)
  t.equal(res.body.job.items.length, englishTable.expected.length)
  const job = await eventually(async () => {
    const j = await stack.api('GET', `/jobs/${res.body.job.id}`, { token: alice.token })
    return j.body.status === 'DONE' ? j.body : undefined
  }, 20_000)
  t.equal(job.counts.pending, 0)

  const [first, second] = englishTable.expected
  const subset = await stack.api('POST', '/classifications/batch', { token: alice.token, body: { document_id: res.body.document_id, partnumbers: [first!.partnumber, second!.partnumber], reclassify: true } })
  t.equal(subset.status, 202)
  t.same(subset.body.items.map((i: any) => i.partnumber), [first!.partnumber, second!.partnumber])
  const stranger = await stack.api('POST', '/classifications/batch', { token: alice.token, body: { document_id: res.body.document_id, partnumbers: ['NOT-IN-IT'] } })
  t.equal(stranger.status, 400)
  t.equal(stranger.body.code, 'partnumbers_not_in_document')
  const notYours = await stack.api('POST', '/classifications/batch', { token: bob.token, body: { document_id: res.body.document_id } })
  t.equal(notYours.status, 404)
})

test('a PDF with no part numbers is a 201 with an empty list', async (t) => {
  const none = fixtures.find((f) => f.expected.length === 0)!
  const res = await upload(stack, alice.token, none.pdf)
  t.equal(res.status, 201)
  t.same(res.body.part_numbers, [])
})

test('every bad upload is a clear 4xx and stores nothing', async (t) => {
  const before = await documentCount()
  const valid = await simplePdf(1)
  const cases: Array<[string, Stack, Buffer | null, number, string, { field?: string }?]> = [
    ['not a PDF, whatever its name', stack, Buffer.from('Item;Part Number\n1;LM358N\n'), 415, 'not_pdf'],
    ['an empty file', stack, Buffer.alloc(0), 400, 'empty'],
    ['an encrypted PDF', stack, await simplePdf(1, { userPassword: 'secret', ownerPassword: 'owner' }), 422, 'encrypted'],
    ['a truncated PDF', stack, valid.subarray(0, Math.floor(valid.length / 2)), 422, 'corrupt'],
    ['no file at all', stack, null, 400, 'file_missing'],
    ['a file in another field', stack, valid, 400, 'file_missing', { field: 'attachment' }],
    ['more pages than DOCUMENT_MAX_PAGES', limited, await simplePdf(3), 413, 'too_many_pages'],
    ['more bytes than DOCUMENT_MAX_BYTES', limited, Buffer.concat([valid, Buffer.alloc(8192, 0x20)]), 413, 'document_too_large'],
  ]
  for (const [why, target, file, status, code, options] of cases) {
    const res = await upload(target, alice.token, file, options)
    t.equal(res.status, status, why)
    t.equal(res.body.code, code, `${why}: ${res.body.message}`)
    t.type(res.body.message, 'string')
  }
  const json = await stack.api('POST', '/documents', { token: alice.token, body: { file: 'x' } })
  t.equal(json.status, 415, 'JSON instead of multipart')
  t.equal(await documentCount(), before, 'nothing was stored')
})
