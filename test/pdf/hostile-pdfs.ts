/**
 * Hostile PDFs, generated in memory (nothing large is committed): flate bombs, deep nesting, huge
 * cross-reference tables, broken streams, too many pages, huge images and fonts. Each says what a
 * user must get for it: a refusal with a stable code, or 201 where the document is harmless.
 */
import { constants, deflateRawSync, deflateSync } from 'node:zlib'

export interface HostilePdf {
  name: string
  about: string
  pdf: Buffer
  /** The answer to expect: a rejection code, or `ok` (201, extracted) for a document that is harmless. */
  expect: 'ok' | 'corrupt' | 'too_many_pages' | 'too_large_decompressed' | 'too_complex'
}

const MiB = 1_048_576

/** A PDF of these objects (numbered from 1 in order; 1 must be the catalog), with a correct cross-reference table. */
export function pdfFile(objects: Array<string | Buffer>, options: { xref?: (offsets: number[]) => string } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')]
  let length = parts[0]!.length
  const offsets: number[] = []
  objects.forEach((object, i) => {
    offsets.push(length)
    const part = typeof object === 'string'
      ? Buffer.from(`${i + 1} 0 obj\n${object}\nendobj\n`, 'latin1')
      : Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), object, Buffer.from('\nendobj\n')])
    parts.push(part)
    length += part.length
  })
  const xref = options.xref?.(offsets) ?? xrefTable(offsets)
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`, 'latin1'))
  return Buffer.concat(parts)
}

/** The table of these objects' offsets, padded to `size` entries with copies of the first object's entry. */
function xrefTable(offsets: number[], size = offsets.length + 1): string {
  const entry = (offset: number) => `${String(offset).padStart(10, '0')} 00000 n \n`
  const padding = entry(offsets[0]!).repeat(size - 1 - offsets.length)
  return `xref\n0 ${size}\n0000000000 65535 f \n${offsets.map(entry).join('')}${padding}`
}

/** A stream object; the dictionary gets its /Length (unless given) and whatever `dict` adds. */
export function streamObject(dict: string, data: Buffer, length = data.length): Buffer {
  return Buffer.concat([Buffer.from(`<< /Length ${length} ${dict} >>\nstream\n`), data, Buffer.from('\nendstream')])
}

const FONT = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>'
const TEXT = 'BT /F1 9 Tf 10 50 Td (PN: LM358N) Tj ET'

/** A one-page document: catalog 1, pages 2, page 3 (with `pageExtra` in its dictionary), font 4, content 5, then `more` from 6. */
export function onePage(content: Buffer, options: { pageExtra?: string; resources?: string; more?: Array<string | Buffer> } = {}): Buffer {
  return pdfFile([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> ${options.resources ?? ''} >> /Contents 5 0 R ${options.pageExtra ?? ''} >>`,
    FONT,
    content,
    ...(options.more ?? []),
  ])
}

const plainContent = () => streamObject('', Buffer.from(TEXT))

/**
 * A zlib stream of `chunk` repeated `times` times, built without compressing the whole: the chunk
 * is deflated once, flushed to a byte boundary with its history cleared, and the deflated bytes
 * repeated. A gigabyte bomb costs milliseconds to make.
 */
export function repeatedDeflate(chunk: Buffer, times: number): Buffer {
  const block = deflateRawSync(chunk, { level: 9, finishFlush: constants.Z_FULL_FLUSH })
  const FINAL_EMPTY_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff])
  const checksum = Buffer.alloc(4)
  checksum.writeUInt32BE(adler32Repeated(chunk, times))
  return Buffer.concat([Buffer.from([0x78, 0xda]), ...Array<Buffer>(times).fill(block), FINAL_EMPTY_BLOCK, checksum])
}

/** Adler-32 of `chunk` repeated `times` times, from the chunk's sums. */
function adler32Repeated(chunk: Buffer, times: number): number {
  const MOD = 65521
  let sum = 0
  let weighted = 0 // each byte counted once for every byte from it to the chunk's end
  chunk.forEach((byte, i) => {
    sum = (sum + byte) % MOD
    weighted = (weighted + byte * (chunk.length - i)) % MOD
  })
  let a = 1
  let b = 0
  for (let i = 0; i < times; i++) {
    b = (b + ((chunk.length % MOD) * a) + weighted) % MOD
    a = (a + sum) % MOD
  }
  return ((b << 16) | a) >>> 0
}

/** `line` repeated to fill one MiB. */
function mebibyteOf(line: string): Buffer {
  return Buffer.alloc(MiB, line)
}

function flateContent(chunk: Buffer, mebibytes: number): Buffer {
  return streamObject('/Filter /FlateDecode', repeatedDeflate(chunk, mebibytes))
}

/** `count` pages, each a real object of the page tree (inheriting its box and resources, sharing one content stream). */
function manyPages(count: number): Buffer {
  const first = 6
  const kids = Array.from({ length: count }, (_, i) => `${first + i} 0 R`).join(' ')
  return pdfFile([
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${kids}] /Count ${count} /MediaBox [0 0 200 100] /Resources << /Font << /F1 4 0 R >> >> >>`,
    '<< >>', // unused, keeps the numbering of onePage
    FONT,
    plainContent(),
    ...Array<string>(count).fill('<< /Type /Page /Parent 2 0 R /Contents 5 0 R >>'),
  ])
}

export function hostilePdfs(): HostilePdf[] {
  const textDeflated = deflateSync(Buffer.from(TEXT))
  return [
    {
      name: 'text-operator bomb',
      about: 'a FlateDecode content stream inflating to 100 MiB of text operators (as reported: the file is about 100 KB)',
      pdf: onePage(flateContent(mebibyteOf(`${TEXT}\n`), 100)),
      expect: 'too_complex',
    },
    {
      name: 'whitespace bomb',
      about: 'a FlateDecode content stream inflating to 300 MiB of spaces',
      pdf: onePage(flateContent(mebibyteOf(' '), 300)),
      expect: 'too_large_decompressed',
    },
    {
      name: 'double-flate bomb',
      about: 'a content stream behind two FlateDecode filters: 1 MiB that inflates again to 300 MiB of spaces',
      pdf: onePage(streamObject('/Filter [/FlateDecode /FlateDecode]', deflateSync(repeatedDeflate(mebibyteOf(' '), 300)))),
      expect: 'too_large_decompressed',
    },
    {
      name: 'deep arrays',
      about: 'an array nested 100,000 deep in the page dictionary',
      pdf: onePage(plainContent(), { pageExtra: `/Deep ${'['.repeat(100_000)}${']'.repeat(100_000)}` }),
      expect: 'corrupt',
    },
    {
      name: 'deep dictionaries',
      about: 'a dictionary nested 100,000 deep in the page dictionary',
      pdf: onePage(plainContent(), { pageExtra: `/Deep ${'<< /A '.repeat(100_000)}${'>> '.repeat(100_000)}` }),
      expect: 'corrupt',
    },
    {
      name: 'huge xref table',
      about: 'a cross-reference table of 500,000 entries (10 MB), all but five pointing at the catalog',
      pdf: pdfFile(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>', FONT, plainContent()], {
        xref: (offsets) => xrefTable(offsets, 500_000),
      }),
      expect: 'ok',
    },
    {
      name: 'xref claiming 2e9 entries',
      about: 'a cross-reference subsection that announces 2,000,000,000 entries',
      pdf: pdfFile(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>', FONT, plainContent()], {
        xref: (offsets) => xrefTable(offsets).replace(/^xref\n0 \d+/, 'xref\n0 2000000000'),
      }),
      expect: 'ok',
    },
    {
      name: 'stream /Length past the end',
      about: 'a content stream whose /Length is 999,999,999',
      pdf: onePage(streamObject('', Buffer.from(TEXT), 999_999_999)),
      expect: 'ok',
    },
    {
      name: 'stream /Length too short',
      about: 'a content stream whose /Length is 3',
      pdf: onePage(streamObject('', Buffer.from(TEXT), 3)),
      expect: 'ok',
    },
    {
      name: 'truncated deflate data',
      about: 'a FlateDecode content stream cut off halfway through',
      pdf: onePage(streamObject('/Filter /FlateDecode', textDeflated.subarray(0, textDeflated.length >> 1))),
      expect: 'ok',
    },
    {
      name: 'corrupt deflate data',
      about: 'a FlateDecode content stream whose compressed bytes are overwritten in the middle',
      pdf: onePage(streamObject('/Filter /FlateDecode', Buffer.concat([textDeflated.subarray(0, 6), Buffer.alloc(textDeflated.length - 6, 0xff)]))),
      expect: 'ok',
    },
    {
      name: '100,000 tiny pages',
      about: 'a page tree of 100,000 real pages (8 MB)',
      pdf: manyPages(100_000),
      expect: 'too_many_pages',
    },
    {
      name: 'huge image',
      about: 'a 20000 x 20000 RGB image (1.2 GB) as FlateDecode, drawn on the page',
      pdf: onePage(streamObject('', Buffer.from(`q 200 0 0 100 0 0 cm /Im1 Do Q ${TEXT}`)), {
        resources: '/XObject << /Im1 6 0 R >>',
        more: [streamObject('/Type /XObject /Subtype /Image /Width 20000 /Height 20000 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode', repeatedDeflate(Buffer.alloc(MiB), 1145))],
      }),
      expect: 'too_large_decompressed',
    },
    {
      name: 'huge font',
      about: 'the page\'s font embedded as a 64 MiB TrueType program (FontFile2) of zeros',
      pdf: pdfFile([
        '<< /Type /Catalog /Pages 2 0 R >>',
        '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
        '<< /Type /Font /Subtype /TrueType /BaseFont /Huge /FirstChar 32 /LastChar 126 /Widths [] /Encoding /WinAnsiEncoding /FontDescriptor 6 0 R >>',
        plainContent(),
        '<< /Type /FontDescriptor /FontName /Huge /Flags 32 /FontBBox [0 0 1000 1000] /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile2 7 0 R >>',
        streamObject('/Filter /FlateDecode', repeatedDeflate(Buffer.alloc(MiB), 64)),
      ]),
      expect: 'ok',
    },
  ]
}
