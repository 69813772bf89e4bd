/**
 * Issue 13: which columns give part numbers (header words and cell contents), and how a part-number
 * cell is cut into codes. Pure functions; the real corpus (real-corpus.test.ts) measures the whole.
 */
import { test } from 'tap'
import { isPartNumber } from '../../src/services/pdf/classify-token.js'
import { dropContained, splitAttributes, wholeCellCode } from '../../src/services/pdf/code-shape.js'
import { columnRoles, isDistributorCode, isSellerCode } from '../../src/services/pdf/column-roles.js'
import { headerTerm } from '../../src/services/pdf/headers.js'
import type { Row, TableHeader } from '../../src/services/pdf/table.js'
import { cellCodes } from '../../src/services/pdf/text-scan.js'

test('header words in six languages map to column roles', async (t) => {
  const roles: Array<[string, string, number?]> = [
    ["Manufacturer's Part No.", 'pn', 1], ['Mfr. Part #', 'pn', 1], ['MPN', 'pn', 1], ['Mfg Part Number', 'pn', 1],
    ['Part Number', 'pn', 1], ['P/N', 'pn', 1], ['Ref. Fabricant', 'pn', 1], ['Référence fabricant', 'pn', 1],
    ['Hersteller-Teilenummer', 'pn', 1], ['Herstellernummer', 'pn', 1], ['Nº de pieza', 'pn', 1],
    ['Código fabricante', 'pn', 1], ['Cód. fab.', 'pn', 1],
    ['Digikey Part No.', 'order'], ['Mouser #', 'order'], ['Farnell Order Code', 'order'], ['Bestellnummer', 'order'],
    ['Artikelnummer', 'order'], ['Art. No.', 'order'], ['Ref. Fournisseur', 'order'], ['Supplier Part Number', 'order'],
    ['Your Part', 'internal'], ['Código interno', 'internal'],
    ['Value', 'value'], ['Comment', 'value'], ['ID', 'value'], ['Name', 'value'],
    ['Referencia', 'pn', 2], ['Descripción', 'desc'], ['Bezeichnung', 'desc'], ['Menge', 'qty'], ['Quantité', 'qty'],
    ['Designator', 'other'], ['Footprint', 'other'],
  ]
  for (const [label, kind, rank] of roles) {
    const term = headerTerm(label)
    t.equal(term?.kind, kind, `${label}: ${kind}`)
    if (rank !== undefined) t.equal(term?.rank, rank, `${label}: rank ${rank}`)
  }
})

test('distributor codes by shape', async (t) => {
  for (const code of ['296-8306-5-ND', 'ATF16V8BQL-15PU-ND', '595-TPS2375D', '2496998', '123-4567', 'B01LWSJBTD']) {
    t.ok(isDistributorCode(code), `distributor ${code}`)
  }
  for (const code of ['SN74HC367N', 'ERJ-2GEJ102X', '1N5822']) t.notOk(isDistributorCode(code), `not distributor ${code}`)
  t.ok(isSellerCode('296-8306-5-ND'), '-ND is a seller code anywhere')
  t.notOk(isSellerCode('2496998'), 'all-digit codes are judged by column only')
})

/** A table of the given column kinds and rows of cells, positions irrelevant here. */
function table(kinds: Array<[TableHeader['columns'][number]['kind'], number]>, cells: string[][]): { header: TableHeader; rows: Row[] } {
  const columns = kinds.map(([kind, rank], i) => ({ kind, rank, label: kind, x0: i * 10, x1: i * 10 + 5, left: i * 10, right: i * 10 + 10 }))
  const line = { y: 0, size: 8, x0: 0, x1: 0, words: [], segments: [], text: '' }
  return { header: { columns, y: 0, size: 8 }, rows: cells.map((c) => ({ line, cells: c })) }
}

test('column roles: a "part number" column of Digi-Key codes is a distributor column', async (t) => {
  const { header, rows } = table([['pn', 1], ['pn', 1], ['desc', 0]], [
    ['SN74HC367N', '296-8306-5-ND', 'IC BUFFER'],
    ['MAX232N', '296-1402-5-ND', 'IC DRIVER'],
  ])
  t.same(columnRoles(header, rows), { manufacturer: [0], generic: [], excluded: [1] })
})

test('column roles: a value column is read when its cells look like part numbers, not when they are values', async (t) => {
  const parts = table([['value', 0], ['qty', 0]], [['KPT-1608EC', '8'], ['100n', '8'], ['SN74AUC1G04DCKR', '1'], ['10k', '5']])
  t.same(columnRoles(parts.header, parts.rows).manufacturer, [0], 'part numbers in Value: read')
  const values = table([['value', 0], ['qty', 0]], [['100n', '8'], ['10k', '5'], ['4k7', '2'], ['1u', '1']])
  t.same(columnRoles(values.header, values.rows).manufacturer, [], 'values only: not read')
})

test('column roles: the reference of a document info block is not a part number', async (t) => {
  const { header, rows } = table([['other', 0], ['other', 0], ['pn', 2]], [['03/20/2023', '04/04/2023', 'CUSTREF123']])
  t.same(columnRoles(header, rows).generic, [])
})

test('a part-number cell keeps its inner spaces and punctuation', async (t) => {
  t.same(cellCodes('BC847B,215'), ['BC847B,215'])
  t.same(cellCodes('B2B-XH-A(LF)(SN)'), ['B2B-XH-A(LF)(SN)'])
  t.same(cellCodes('PTS645SL43-2 LFS'), ['PTS645SL43-2 LFS'])
  t.same(cellCodes('5 x 5GTH935'), ['5GTH935'], 'a leading count is not part of it')
  t.same(cellCodes('LAN8710A-EZC(QFN32)'), ['LAN8710A-EZC'], 'a package in brackets is cut off')
  t.same(cellCodes('74HC367 SN74HC367N'), ['SN74HC367N'], 'a generic name beside its full part number')
  t.same(cellCodes('4.9152 MHz ECS-49-20-1X'), ['ECS-49-20-1X'], 'a value beside the code')
  t.same(cellCodes('LM358 8SOIC'), ['LM358'], 'a package beside the code')
  t.equal(wholeCellCode('SN74HC595DR TPS62130RGTR'), null, 'two codes are two codes')
})

test('attribute lists are split, suffixes kept', async (t) => {
  t.same(splitAttributes('1N5822/SS34/SMA'), ['1N5822', 'SS34', 'SMA'])
  t.same(splitAttributes('DHT22/AM2302'), ['DHT22', 'AM2302'])
  for (const whole of ['LM2596S-5.0/NOPB', 'LM358M/TR', 'MCP4922-E/P', 'CA6707/10']) t.same(splitAttributes(whole), [whole])
  t.same(dropContained(['74HC367', 'SN74HC367N']), ['SN74HC367N'])
})

test('packages, footprints, export classes and house codes are not part numbers', async (t) => {
  for (const token of ['EAR99', '8SOIC', '16-PDIP', 'R0402', 'RA1206', 'SMD0805-1K2-1', 'QFN-20_5x5mm', 'USB-3.5MM-DIP', '100u', 'PH0x50', '10-POS', 'HEADER_1X4_male', 'R_0402_5MIL_DWS', 'XH2.54', 'KF7.62', '4B8_2.2k', 'Q12MHz']) {
    t.notOk(isPartNumber(token, 'labelled'), `labelled ${token}`)
    t.notOk(isPartNumber(token, 'free'), `free ${token}`)
  }
})

test('short diode part numbers are not read as values with a reference letter', async (t) => {
  for (const pn of ['S1M', 'S1A', 'SS34', 'BAT54C']) t.ok(isPartNumber(pn, 'labelled'), `labelled ${pn}`)
})

test('column roles: a generic code column of numbers only is the buyer\'s item code', async (t) => {
  const internal = table([['pn', 2], ['desc', 0], ['qty', 0]], [['10082', 'Cable USB LM358N', '1'], ['10210', 'SD Card', '1'], ['10273', 'Cable', '2']])
  t.same(columnRoles(internal.header, internal.rows), { manufacturer: [], generic: [], excluded: [0] })
  const mixed = table([['pn', 2], ['desc', 0]], [['MMBT3904LT1G', 'Transistor'], ['744031220', 'Indutor'], ['TPS62130RGTR', 'Buck']])
  t.same(columnRoles(mixed.header, mixed.rows).generic, [0], 'a few all-digit part numbers among others: read')
})
