import { test } from 'tap'
import { extractPartNumbers } from '../../src/services/pdf/index.js'
import { bigOrder, buildFixtures, type ExpectedPart, type Fixture } from './fixtures.js'

// Built once for every test in this file.
const fixtures: Promise<Fixture[]> = Promise.all([buildFixtures(), bigOrder()]).then(([small, big]) => [...small, big])

const key = (partnumber: string) => partnumber.trim().toUpperCase()

test('each fixture yields exactly its expected list: order, page, line, description, quantity', async (t) => {
  for (const fixture of await fixtures) {
    const result = await extractPartNumbers(fixture.pdf)
    t.same(result.part_numbers, fixture.expected, `${fixture.name}: ${fixture.about}`)
    t.ok(result.pages >= 1, `${fixture.name}: page count reported`)
  }
})

test('precision and recall over the whole fixture set are at least 0.98', async (t) => {
  let truePositives = 0
  let extracted = 0
  let expected = 0
  const misses: string[] = []
  for (const fixture of await fixtures) {
    const result = await extractPartNumbers(fixture.pdf)
    const want = new Set(fixture.expected.map((e: ExpectedPart) => key(e.partnumber)))
    const got = new Set(result.part_numbers.map((p) => key(p.partnumber)))
    for (const pn of got) {
      if (want.has(pn)) truePositives++
      else misses.push(`${fixture.name}: unexpected ${pn}`)
    }
    for (const pn of want) if (!got.has(pn)) misses.push(`${fixture.name}: missed ${pn}`)
    extracted += got.size
    expected += want.size
  }
  const precision = extracted ? truePositives / extracted : 1
  const recall = expected ? truePositives / expected : 1
  t.comment(`precision ${precision.toFixed(4)} (${truePositives}/${extracted}), recall ${recall.toFixed(4)} (${truePositives}/${expected})`)
  for (const miss of misses) t.comment(miss)
  t.ok(precision >= 0.98, `precision ${precision.toFixed(4)} >= 0.98`)
  t.ok(recall >= 0.98, `recall ${recall.toFixed(4)} >= 0.98`)
})

test('duplicates merge into the first occurrence and sum quantities', async (t) => {
  const multi = (await fixtures).find((f) => f.name === 'multi-page-table')!
  const result = await extractPartNumbers(multi.pdf)
  const bc847 = result.part_numbers.filter((p) => key(p.partnumber) === 'BC847BLT1G')
  t.equal(bc847.length, 1, 'one entry')
  t.match(bc847[0], { page: 1, line: 3 }, 'first occurrence kept')
  // rows 1, 9 (repeat of row 1) and the later catalogue wrap-arounds
  t.equal(bc847[0]!.quantity, multi.expected.find((e) => e.partnumber === 'BC847BLT1G')!.quantity)
  t.ok(bc847[0]!.quantity! > 10, 'quantities of the repeats were added')
})

test('a table continued on the next page without its header is still read', async (t) => {
  const multi = (await fixtures).find((f) => f.name === 'multi-page-table')!
  const result = await extractPartNumbers(multi.pdf)
  // 4 pages x 22 rows ordering 10, 20, 30, ... pieces: every row's quantity is counted once.
  const total = result.part_numbers.reduce((sum, p) => sum + (p.quantity ?? 0), 0)
  t.equal(total, (10 * 88 * 89) / 2, 'quantities of all 88 rows, page 4 included')
})

test('an order without part numbers gives an empty list', async (t) => {
  const none = (await fixtures).find((f) => f.name === 'no-part-numbers')!
  t.same(await extractPartNumbers(none.pdf), { pages: 1, part_numbers: [] })
})
