import { test } from 'tap'
import { deflateSync } from 'node:zlib'
import { scanContent } from '../../src/services/pdf/content-scan.js'
import { onePage, repeatedDeflate, streamObject } from './hostile-pdfs.js'

const MiB = 1_048_576
const NO_LIMIT = { maxDecompressedBytes: Number.MAX_SAFE_INTEGER, maxTextOperators: Number.MAX_SAFE_INTEGER }
const scan = (pdf: Buffer, limits = NO_LIMIT) => scanContent(pdf, limits)
const flate = (data: Buffer, dict = '/Filter /FlateDecode') => onePage(streamObject(dict, deflateSync(data)))

test('what every zlib stream inflates to is counted, exactly', async (t) => {
  t.equal((await scan(flate(Buffer.alloc(MiB)))).decompressedBytes, MiB)
  const two = onePage(streamObject('/Filter /FlateDecode', deflateSync(Buffer.alloc(1000))), { more: [streamObject('/Filter /FlateDecode', deflateSync(Buffer.alloc(2000)))] })
  t.equal((await scan(two)).decompressedBytes, 3000, 'all streams together')
  t.equal((await scan(onePage(streamObject('', Buffer.alloc(MiB))))).decompressedBytes, 0, 'a stream that is not zlib data adds nothing')
})

test('a stream cannot hide what it inflates to', async (t) => {
  const data = deflateSync(Buffer.alloc(MiB))
  t.equal((await scan(onePage(streamObject('/Filter /FlateDecode', data, 10)))).decompressedBytes, MiB, 'behind a /Length that is too short')
  t.equal((await scan(flate(Buffer.alloc(MiB), '/Filter /Fl#61teDecode'))).decompressedBytes, MiB, 'behind a filter name spelled with # escapes')
  const storedEndstream = deflateSync(Buffer.concat([Buffer.from('\nendstream\nendobj\n'), Buffer.alloc(MiB)]), { level: 0 })
  t.equal((await scan(onePage(streamObject('/Filter /FlateDecode', storedEndstream)))).decompressedBytes, MiB + 18, 'behind an `endstream` inside the compressed data')
  const twice = onePage(streamObject('/Filter [/FlateDecode /FlateDecode]', deflateSync(deflateSync(Buffer.alloc(MiB)))))
  t.equal((await scan(twice)).decompressedBytes, MiB + deflateSync(Buffer.alloc(MiB)).length, 'behind two FlateDecode filters: both stages count')
})

test('damaged data counts up to the damage', async (t) => {
  const data = deflateSync(Buffer.alloc(4 * MiB, 'BT (x) Tj ET\n'), { level: 1 })
  const cut = await scan(onePage(streamObject('/Filter /FlateDecode', data.subarray(0, data.length >> 1))))
  t.ok(cut.decompressedBytes > MiB && cut.decompressedBytes < 4 * MiB, `truncated halfway: ${cut.decompressedBytes} bytes`)
  const damaged = Buffer.from(data)
  damaged.fill(0xff, data.length >> 1)
  const broken = await scan(onePage(streamObject('/Filter /FlateDecode', damaged)))
  t.ok(broken.decompressedBytes > MiB && broken.decompressedBytes < 4 * MiB, `overwritten from halfway: ${broken.decompressedBytes} bytes`)
})

test('text-showing operators are counted as words, in the file and in what it inflates to', async (t) => {
  const content = Buffer.from('BT (a) Tj [(b) 5 (c)] TJ (d) \' 1 2 (e) " ET (Tj inside a string counts too: rare) xTj Tjx')
  t.equal((await scan(onePage(streamObject('', content)))).textOperators, 5, 'plain content: Tj TJ \' " and the word in the string')
  t.equal((await scan(flate(content))).textOperators, 5, 'compressed content')
})

test('counting stops soon after a limit is passed', async (t) => {
  const gigabyte = onePage(streamObject('/Filter /FlateDecode', repeatedDeflate(Buffer.alloc(MiB), 1024)))
  const started = performance.now()
  const totals = await scan(gigabyte, { ...NO_LIMIT, maxDecompressedBytes: 8 * MiB })
  t.ok(totals.decompressedBytes > 8 * MiB && totals.decompressedBytes < 16 * MiB, `a 1 GiB bomb is counted to ${totals.decompressedBytes} bytes`)
  t.comment(`in ${(performance.now() - started).toFixed(0)} ms`)
  const operators = await scan(flate(Buffer.alloc(MiB, '(x) Tj\n')), { ...NO_LIMIT, maxTextOperators: 1000 })
  t.ok(operators.textOperators > 1000 && operators.textOperators < 150_000, `text operators counted to ${operators.textOperators}`)
})
