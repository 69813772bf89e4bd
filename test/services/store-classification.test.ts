import { TRUSTED } from '../../src/services/classifications/review-reasons.js'
import t0 from 'tap'
import { startDatabasePool } from '../helpers/stack.js'
import { storeClassification } from '../../src/services/classifications/classifications-store.js'
import type { ClassificationFields } from '../../src/services/ai/classification-result.js'

// Results naming one manufacturer share its row: storing them must neither duplicate it nor make
// the jobs that name it wait for one another.

const { test } = t0
const { pool, close } = await startDatabasePool(4)
t0.teardown(close)
const { rows: [owner] } = await pool.query(`INSERT INTO users (email, password_hash) VALUES ('maker@nexa.test', 'x') RETURNING id`)

let jobNumber = 0
async function newJob(): Promise<{ id: string; partnumber: string }> {
  const partnumber = `MK${++jobNumber}`
  const { rows } = await pool.query(
    `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel)
     VALUES ('SINGLE', $1, 'RUNNING', 'AI', $2, '{}', gen_random_uuid()::text) RETURNING id`,
    [owner.id, partnumber],
  )
  return { id: rows[0].id, partnumber }
}

const result = (manufacturer: ClassificationFields['manufacturer']): ClassificationFields => ({
  partnumber: null, ncm: '85423190', ex: null, nve: null, description: 'Integrated circuit', manufacturer, confidence: 0.9,
})

async function makers(name: string) {
  const { rows } = await pool.query('SELECT id, name, address, country FROM manufacturers WHERE lower(name) = lower($1)', [name])
  return rows
}

async function makerOf(classificationId: string): Promise<string> {
  const { rows } = await pool.query('SELECT manufacturer_id FROM classifications WHERE id = $1', [classificationId])
  return rows[0].manufacturer_id
}

test('a known manufacturer is only read: a job storing a result naming it does not wait for another that is', async (t) => {
  const first = await newJob()
  await storeClassification(pool, first.id, first.partnumber, result({ name: 'Texas Instruments', address: 'Dallas', country: 'US' }), TRUSTED)
  const [maker] = await makers('Texas Instruments')

  // One job's final transaction still open after storing its result...
  const slow = await pool.connect()
  const quick = await pool.connect()
  t.teardown(() => {
    slow.release()
    quick.release()
  })
  const [a, b] = [await newJob(), await newJob()]
  await slow.query('BEGIN')
  await storeClassification(slow, a.id, a.partnumber, result({ name: 'Texas Instruments', address: 'Dallas', country: 'US' }), TRUSTED)
  // ...and another's, naming the same maker (in other words), must not queue behind it.
  await quick.query(`SET lock_timeout = '2s'`)
  const stored = await storeClassification(quick, b.id, b.partnumber, result({ name: 'TEXAS INSTRUMENTS', address: null, country: 'US' }), TRUSTED)
  await slow.query('COMMIT')

  t.equal(await makerOf(stored), maker.id, 'the same manufacturer row')
  t.same(await makers('Texas Instruments'), [maker], 'one row, its name and details unchanged')
})

test('a result with details the manufacturer lacks or changes updates them; missing details keep what is known', async (t) => {
  const [a, b, c] = [await newJob(), await newJob(), await newJob()]
  const first = await storeClassification(pool, a.id, a.partnumber, result({ name: 'Acme Semiconductors', address: null, country: null }), TRUSTED)
  const [created] = await makers('Acme Semiconductors')
  t.same(created, { id: await makerOf(first), name: 'Acme Semiconductors', address: null, country: null })

  await storeClassification(pool, b.id, b.partnumber, result({ name: 'ACME semiconductors', address: 'Campinas', country: 'BR' }), TRUSTED)
  t.same(await makers('Acme Semiconductors'), [{ ...created, address: 'Campinas', country: 'BR' }], 'details filled in, the first spelling kept')

  const third = await storeClassification(pool, c.id, c.partnumber, result({ name: 'acme semiconductors', address: null, country: 'PT' }), TRUSTED)
  t.same(await makers('Acme Semiconductors'), [{ ...created, address: 'Campinas', country: 'PT' }], 'a changed country replaces the old one, the address stays')
  t.equal(await makerOf(third), created.id)
})
