import t0 from 'tap'
import { startServices, startStack } from '../helpers/stack.js'
import { filePart, multipartBody, rawUpload } from '../helpers/multipart.js'
import { bigOrder, simplePdf } from '../pdf/fixtures.js'

// The extraction queue is shared by every user of an instance: one user's burst of uploads must
// not fill it. Past DOCUMENT_MAX_CONCURRENT_PER_USER uploads in progress, that user gets 429
// too_many_uploads at once, and everyone else's uploads go on.

const { test } = t0
const PER_USER = 2
const BURST = 40 // more than the extraction pool holds (its workers and 32 waiting)
const services = await startServices()
const stack = await startStack(services, { env: { DOCUMENT_MAX_CONCURRENT_PER_USER: String(PER_USER) } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const alice = await stack.createUser('burst-alice@nexa.test')
const bob = await stack.createUser('patient-bob@nexa.test')
const slow = (await bigOrder()).pdf // a 30-page order: about a second of extraction each
const small = await simplePdf(1)

const B = 'fairness-boundary'
const upload = (token: string, pdf: Buffer) => rawUpload(stack.url, { token, contentType: `multipart/form-data; boundary=${B}`, body: multipartBody(B, [filePart(pdf)]) })

test(`a burst of ${BURST} uploads from one user: ${PER_USER} proceed, the rest get 429 at once, another user's upload succeeds`, async (t) => {
  t.equal((await upload(bob.token, small)).status, 201, 'the extraction worker is warm')
  const answers: Array<{ status: number; body: any; headers: Record<string, unknown> }> = []
  let firstRefusal!: () => void
  const refused = new Promise<void>((resolve) => { firstRefusal = resolve })
  const burst = Array.from({ length: BURST }, () => upload(alice.token, slow).then((res) => {
    answers.push(res)
    if (res.status !== 201) firstRefusal()
    return res
  }))
  // Bob comes once Alice has been refused something: her uploads fill whatever she may fill.
  await refused
  const started = performance.now()
  const bobs = await upload(bob.token, small)
  const bobMs = Math.round(performance.now() - started)
  const aliceDoneBeforeBob = answers.filter((a) => a.status === 201).length
  const all = await Promise.all(burst)

  t.equal(bobs.status, 201, `Bob's upload is extracted: ${bobs.status} ${bobs.body.code ?? ''}`)
  t.equal(bobs.body.total, 1)
  const accepted = all.filter((a) => a.status === 201)
  const tooMany = all.filter((a) => a.status === 429)
  t.same(all.filter((a) => a.status !== 201 && a.status !== 429).map((a) => `${a.status} ${a.body.code}`), [], 'Alice gets 201 or 429, nothing else')
  t.ok(accepted.length >= PER_USER, `${accepted.length} of Alice's uploads extracted`)
  // (A busy machine may finish one of hers before the last of the burst arrive: she then has room for more.)
  t.ok(tooMany.length >= BURST - 2 * PER_USER, `${tooMany.length} refused with 429`)
  for (const res of tooMany) {
    t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'too_many_uploads', message: String })
    t.ok(Number(res.headers['retry-after']) >= 1, `Retry-After ${res.headers['retry-after']}`)
  }
  t.comment(`Bob answered in ${bobMs} ms, after ${aliceDoneBeforeBob} of Alice's extractions`)

  // Finished uploads, and refused ones, give their place back.
  t.equal((await rawUpload(stack.url, { token: alice.token, contentType: 'multipart/form-data', body: Buffer.from('no boundary') })).status, 400)
  t.equal((await upload(alice.token, Buffer.from('not a pdf'))).status, 415)
  const pair = await Promise.all([upload(alice.token, small), upload(alice.token, small)])
  t.same(pair.map((r) => r.status), [201, 201], `Alice may upload ${PER_USER} at a time again`)
})
