import { test } from 'tap'
import { extractPartNumbers, PdfRejectedError, type PdfRejectCode } from '../../src/services/pdf/index.js'
import { simplePdf } from './fixtures.js'

/** The few assertions used below (structural, so any tap test object fits). */
interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): unknown
  ok(value: unknown, message: string): unknown
}

async function rejects(t: Asserts, pdf: Uint8Array, code: PdfRejectCode, what: string, options = {}) {
  try {
    await extractPartNumbers(pdf, options)
    t.ok(false, `${what}: expected rejection ${code}`)
  } catch (err) {
    t.ok(err instanceof PdfRejectedError, `${what}: typed error`)
    const e = err as PdfRejectedError
    t.equal(e.code, code, `${what}: code ${code}`)
    t.ok(e.statusCode >= 400 && e.statusCode < 500, `${what}: 4xx status (${e.statusCode})`)
    t.ok(e.message.length > 10, `${what}: human message "${e.message}"`)
  }
}

test('not a PDF, judged by content', async (t) => {
  await rejects(t, Buffer.from('\x89PNG\r\n\x1a\n0000IHDR'), 'not_pdf', 'PNG bytes')
  await rejects(t, Buffer.from('<html><body>PN: LM358N</body></html>'), 'not_pdf', 'HTML')
  await rejects(t, Buffer.from('Item;PN;Qty\n1;LM358N;10\n'), 'not_pdf', 'CSV')
  const pdf = await simplePdf(1)
  await rejects(t, Buffer.concat([Buffer.alloc(2048, 0x20), pdf]), 'not_pdf', 'magic beyond the first KiB')
})

test('empty file', async (t) => {
  await rejects(t, new Uint8Array(0), 'empty', 'zero bytes')
})

test('too many pages', async (t) => {
  await rejects(t, await simplePdf(3), 'too_many_pages', 'maxPages 2', { maxPages: 2 })
  await rejects(t, await simplePdf(301), 'too_many_pages', 'default limit of 300')
  const ok = await extractPartNumbers(await simplePdf(3), { maxPages: 3 })
  t.equal(ok.pages, 3, 'exactly at the limit is fine')
})

test('a password needed to open is refused; an owner password alone is not', async (t) => {
  await rejects(t, await simplePdf(1, { userPassword: 'secret', ownerPassword: 'owner' }), 'encrypted', 'user password')
  // An owner password only (permissions restricted, no password to open): read like any other PDF.
  const owner = await extractPartNumbers(await simplePdf(1, { ownerPassword: 'owner', permissions: { printing: 'highResolution' } }))
  t.equal(owner.pages, 1, 'owner password only: read')
  t.ok(owner.part_numbers.length > 0, 'owner password only: its part numbers are found')
})

test('corrupt or truncated', async (t) => {
  const pdf = await simplePdf(2)
  await rejects(t, pdf.subarray(0, Math.floor(pdf.length / 2)), 'corrupt', 'cut in half')
  await rejects(t, pdf.subarray(0, pdf.length - 200), 'corrupt', 'tail missing')
  await rejects(t, Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ngarbage garbage\n%%EOF\n'), 'corrupt', 'header and garbage')
  const mangled = Buffer.from(pdf)
  mangled.fill(0x41, 200, 900)
  await rejects(t, mangled, 'corrupt', 'objects overwritten')
  const noXref = Buffer.from(pdf.toString('latin1').replace(/xref[\s\S]*startxref\s+\d+/, 'startxref\n99999999'), 'latin1')
  const kept = await extractPartNumbers(noXref).then(
    (r) => `recovered ${r.pages} page(s)`,
    (e: PdfRejectedError) => e.code,
  )
  t.ok(['corrupt', 'recovered 2 page(s)'].includes(kept), `broken xref table: pdfjs rebuilds it or we reject (${kept})`)
})

test('a valid PDF from a Node Buffer slice and a plain Uint8Array both work', async (t) => {
  const pdf = await simplePdf(1)
  const padded = Buffer.concat([Buffer.from('xxxx'), pdf])
  t.same((await extractPartNumbers(padded.subarray(4))).part_numbers.map((p) => p.partnumber), ['LM358N'])
  t.same((await extractPartNumbers(new Uint8Array(pdf))).part_numbers.map((p) => p.partnumber), ['LM358N'])
})
