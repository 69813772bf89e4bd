import t0 from 'tap'
import { startServices, startStack } from '../helpers/stack.js'
import { fieldPart, filePart, multipartBody, rawUpload, type RawPart } from '../helpers/multipart.js'
import { simplePdf } from '../pdf/fixtures.js'

// Whatever bytes arrive as an upload, the answer is a 4xx in the API's error shape
// ({statusCode, error, code, message}), never a 500, and nothing is stored.

const { test } = t0
const LIMIT = 4096
const services = await startServices()
const stack = await startStack(services, { env: { DOCUMENT_MAX_BYTES: String(LIMIT) } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const { token } = await stack.createUser('uploader@nexa.test')
const pdf = await simplePdf(1)
const documentCount = async () => (await stack.db.query('SELECT count(*)::int AS n FROM documents')).rows[0].n

const B = 'nexa-boundary-7d1f'
const FORM = `multipart/form-data; boundary=${B}`
const form = (...parts: RawPart[]) => multipartBody(B, parts)
const skippedPart: RawPart = { headers: ['X-Note: no disposition'], body: 'skipped' }

interface Case {
  why: string
  body: Buffer
  contentType?: string
  status: number
  code: string
}

const cases: Case[] = [
  { why: 'multipart/form-data without a boundary', contentType: 'multipart/form-data', body: form(filePart(pdf)), status: 400, code: 'malformed_upload' },
  { why: 'an empty boundary', contentType: 'multipart/form-data; boundary=', body: form(filePart(pdf)), status: 400, code: 'file_missing' },
  { why: 'a body cut off in the middle of the file', contentType: FORM, body: form(filePart(pdf)).subarray(0, 400), status: 400, code: 'malformed_upload' },
  { why: 'the file\'s bytes and then nothing: no delimiter after them', contentType: FORM, body: multipartBody(B, [filePart(pdf)], { close: false }).subarray(0, -2), status: 400, code: 'malformed_upload' },
  { why: 'a body cut off in the part headers', contentType: FORM, body: Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filen`), status: 400, code: 'file_missing' },
  { why: 'an empty body', contentType: FORM, body: Buffer.alloc(0), status: 400, code: 'file_missing' },
  { why: 'a part without Content-Disposition', contentType: FORM, body: form({ headers: ['Content-Type: application/pdf'], body: pdf }), status: 400, code: 'file_missing' },
  { why: 'a part that is an attachment, not form-data', contentType: FORM, body: form({ headers: ['Content-Disposition: attachment; name="file"; filename="a.pdf"'], body: pdf }), status: 400, code: 'file_missing' },
  { why: 'part headers that are not headers', contentType: FORM, body: form({ headers: ['this is not a header', 'neither: is'], body: pdf }), status: 400, code: 'file_missing' },
  { why: 'part headers with bare LF line ends', contentType: FORM, body: Buffer.from(`--${B}\nContent-Disposition: form-data; name="file"; filename="a.pdf"\n\n${pdf.toString('latin1')}\n--${B}--\n`, 'latin1'), status: 400, code: 'file_missing' },
  { why: 'no file part, only fields', contentType: FORM, body: form(fieldPart('note', 'hello')), status: 400, code: 'file_missing' },
  { why: 'the file in another field', contentType: FORM, body: form(filePart(pdf, 'attachment')), status: 400, code: 'file_missing' },
  { why: 'two files', contentType: FORM, body: form(filePart(pdf), filePart(pdf, 'file', 'b.pdf')), status: 400, code: 'too_many_files' },
  { why: 'a file in `file` and another in `pedido`', contentType: FORM, body: form(filePart(pdf), filePart(pdf, 'pedido')), status: 400, code: 'too_many_files' },
  { why: 'a field over 1 KiB', contentType: FORM, body: form(fieldPart('note', 'n'.repeat(2000)), filePart(pdf)), status: 413, code: 'field_too_large' },
  { why: 'a field over 1 KiB after the file', contentType: FORM, body: form(filePart(pdf), fieldPart('note', 'n'.repeat(2000))), status: 413, code: 'field_too_large' },
  { why: 'eleven fields', contentType: FORM, body: form(...Array.from({ length: 11 }, (_, i) => fieldPart(`f${i}`, 'v')), filePart(pdf)), status: 413, code: 'too_many_parts' },
  { why: 'eleven fields after the file', contentType: FORM, body: form(filePart(pdf), ...Array.from({ length: 11 }, (_, i) => fieldPart(`f${i}`, 'v'))), status: 413, code: 'too_many_parts' },
  { why: 'thirteen parts', contentType: FORM, body: form(...Array.from({ length: 13 }, () => skippedPart), filePart(pdf)), status: 413, code: 'too_many_parts' },
  { why: 'a field named __proto__', contentType: FORM, body: form(fieldPart('__proto__', 'x'), filePart(pdf)), status: 400, code: 'malformed_upload' },
  { why: 'a field declared JSON that is not', contentType: FORM, body: form({ headers: ['Content-Disposition: form-data; name="meta"', 'Content-Type: application/json'], body: '{nope' }, filePart(pdf)), status: 400, code: 'malformed_upload' },
  { why: 'multipart with a JSON body', contentType: FORM, body: Buffer.from(JSON.stringify({ file: pdf.toString('base64') })), status: 400, code: 'file_missing' },
  { why: 'multipart without a boundary, JSON body', contentType: 'multipart/form-data', body: Buffer.from('{"file":"x"}'), status: 400, code: 'malformed_upload' },
  { why: 'a boundary that never appears', contentType: 'multipart/form-data; boundary=never-there', body: form(filePart(pdf)), status: 400, code: 'file_missing' },
  { why: 'multipart/mixed', contentType: `multipart/mixed; boundary=${B}`, body: form(filePart(pdf)), status: 415, code: 'unsupported_media_type' },
  { why: 'no Content-Type', body: form(filePart(pdf)), status: 415, code: 'unsupported_media_type' },
  { why: 'a form charset of UTF-16 with a field', contentType: `multipart/form-data; charset=utf-16; boundary=${B}`, body: form(fieldPart('note', 'ol\u00e1'), filePart(Buffer.from('%PDF-1.7\nnot really'))), status: 422, code: 'corrupt' },
  { why: 'a field in an unknown charset', contentType: FORM, body: form({ headers: ['Content-Disposition: form-data; name="note"', 'Content-Type: text/plain; charset=x-klingon'], body: Buffer.from([0xff, 0xfe, 0x00]) }, filePart(Buffer.alloc(0))), status: 400, code: 'empty' },
  { why: 'a file part in base64 transfer encoding', contentType: FORM, body: form({ headers: [...filePart('').headers, 'Content-Transfer-Encoding: base64'], body: pdf.toString('base64') }), status: 415, code: 'not_pdf' },
]

test('every malformed upload is a 4xx in the API\'s error shape and stores nothing', async (t) => {
  const before = await documentCount()
  for (const c of cases) {
    const res = await rawUpload(stack.url, { token, contentType: c.contentType, body: c.body })
    t.equal(res.status, c.status, `${c.why}: status`)
    t.match(res.body, { statusCode: c.status, error: String, code: c.code, message: String }, `${c.why}: ${JSON.stringify(res.body)}`)
  }
  t.equal(await documentCount(), before, 'nothing was stored')
})

test('odd but well-formed uploads are read as the file they carry', async (t) => {
  const odd: Array<[string, string, Buffer]> = [
    ['a quoted boundary with a space', 'multipart/form-data; boundary="a b"', multipartBody('a b', [filePart(pdf)])],
    ['upper-case media type, charset before the boundary', `Multipart/Form-Data; charset=utf-8; boundary=${B}`, form(filePart(pdf))],
    ['an RFC 5987 file name', FORM, form({ headers: [`Content-Disposition: form-data; name="file"; filename*=UTF-8''pedido%20n%C2%BA%201.pdf`], body: pdf })],
    ['a Latin-1 file name', FORM, form(filePart(pdf, 'file', 'pedido n\u00ba 2.pdf'))],
    ['a preamble and an epilogue', FORM, Buffer.concat([Buffer.from('preamble\r\n'), form(filePart(pdf)), Buffer.from('epilogue')])],
  ]
  for (const [why, contentType, body] of odd) {
    const res = await rawUpload(stack.url, { token, contentType, body })
    t.equal(res.status, 201, `${why}: ${JSON.stringify(res.body).slice(0, 200)}`)
  }
})

/** A valid PDF of `size` bytes: white space before its closing `startxref ... %%EOF`, which stays last. */
function pdfOfSize(size: number): Buffer {
  const tail = pdf.lastIndexOf('startxref')
  return Buffer.concat([pdf.subarray(0, tail), Buffer.alloc(size - pdf.length, 0x20), pdf.subarray(tail)])
}
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test(`DOCUMENT_MAX_BYTES (${LIMIT}): a file of that size is read, any larger one is 413 document_too_large`, async (t) => {
  const before = await documentCount()
  const sizes: Array<[string, number, number]> = [
    ['at the limit', LIMIT, 201],
    ['one byte over', LIMIT + 1, 413],
    ['seven bytes over', LIMIT + 7, 413],
    ['64 KiB over', LIMIT + 64 * 1024, 413],
    ['1 MiB over', LIMIT + 1024 * 1024, 413],
  ]
  for (const [why, size, status] of sizes) {
    const file = pdfOfSize(size)
    const body = form(filePart(file))
    // The file's first LIMIT bytes come on their own, the rest a moment later: the excess then
    // arrives in a chunk of its own, after the reader has taken every byte up to the limit.
    const atLimit = body.indexOf(file) + LIMIT
    const pieces = async function* () {
      yield body.subarray(0, atLimit)
      await pause(100)
      yield body.subarray(atLimit)
    }
    for (const [framing, contentLength] of [['Content-Length', body.length], ['chunked', undefined]] as const) {
      const res = await rawUpload(stack.url, { token, contentType: FORM, body: pieces(), contentLength })
      t.equal(res.status, status, `${why}, ${framing}: ${res.status} ${res.body.code ?? ''}`)
      if (status === 413) t.match(res.body, { statusCode: 413, error: 'Payload Too Large', code: 'document_too_large', message: String })
      else t.equal(res.body.size_bytes, size, 'the whole file was read')
    }
  }
  t.equal(await documentCount(), before + 2, 'only the files at the limit were stored')
})

test('a Content-Length well past the limit is refused before the file is sent', async (t) => {
  const file = pdfOfSize(LIMIT + 1024 * 1024)
  const body = form(filePart(file))
  const fileStart = body.indexOf(file)
  let answered!: () => void
  const answer = new Promise<void>((resolve) => { answered = resolve })
  const pieces = async function* () {
    yield body.subarray(0, fileStart) // the form's head only: the file waits for the answer
    await answer
    yield body.subarray(fileStart)
  }
  // Within 20 s: a gateway that waits for the file never answers.
  const res = await rawUpload(stack.url, { token, contentType: FORM, body: pieces(), contentLength: body.length, timeoutMs: 20_000 }).finally(answered)
  t.equal(res.status, 413)
  t.match(res.body, { statusCode: 413, code: 'document_too_large', message: String })
})
