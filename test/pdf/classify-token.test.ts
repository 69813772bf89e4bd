import { test } from 'tap'
import { isPartNumber, validCnpj, validCpf } from '../../src/services/pdf/classify-token.js'
import { parseQuantity } from '../../src/services/pdf/quantity.js'
import { descriptionCodes, prefixedCodes } from '../../src/services/pdf/text-scan.js'

const PARTS = [
  'BC847BLT1G', 'CL10C330JB8NNNC', 'LM358N', 'GRM188R71H104KA93D', 'STM32F103C8T6', 'RC0603FR-0710KL',
  '1N4148W-7-F', 'SN74HC595DR', 'TPS62130RGTR', 'ATMEGA328P-AU', 'MMBT3904LT1G', 'LM2596S-5.0/NOPB',
  'MAX3232CSE+', 'LT1763CS8-3.3#PBF', 'MCP2551-I/SN', 'SMAJ5.0A', 'ESP32-WROOM-32E', 'SRR1260-100M', 'BAV99',
]

const NEVER = [
  // NCM, CNPJ, CPF (formatted or not), phones, dates, prices, quantities
  '8542.39.91', '85423991', '12.345.678/0001-95', '12345678000195', '123.456.789-09', '12345678909',
  '3456-7890', '98765-4321', '11987654321', '12/03/2025', '2025-03-12', '12-Mar-2025', '03/2025', '10h30',
  '1.234,56', '12.50', '0,0450', '1.000', '2500',
  // units and packages
  '100nF', '10V', '0603', '1/4W', '5%', '4K7', '0R47', '4u7', '100nF/50V', '3-17V', '72MHZ', '64KB', '128Mbit',
  '5x20mm', '20x20x10mm', 'SOT-23', 'SOT-23-6', 'LQFP-48', 'QFN-32', 'TO-220', 'DO-214AC', 'SOD-123', '100un',
  // postal codes, e-mail, URLs, order numbers, words, standards
  '01310-100', 'compras@nexa.com.br', 'https://www.nexa.com.br/po', 'www.nexa.com.br', 'nexa2024.com.br',
  'PO-2024-0012', 'INV-2024-0042', 'OC-7781', 'NF-123456', 'Transistor', 'N/A', 'USB-C', 'RJ45', 'IP67',
  'RS-485', 'Cortex-M3', 'ISO9001', 'AEC-Q100', 'UL94-V0', 'M3x10', 'v1.2.3', '32-bit', 'Item10', 'C123',
]

test('part numbers pass in both contexts', async (t) => {
  for (const pn of PARTS) {
    t.ok(isPartNumber(pn, 'labelled'), `labelled ${pn}`)
    t.ok(isPartNumber(pn, 'free'), `free ${pn}`)
  }
})

test('all-digit part numbers only count where a label says so', async (t) => {
  for (const pn of ['744031220', '43045-0412']) {
    t.ok(isPartNumber(pn, 'labelled'), `labelled ${pn}`)
    t.notOk(isPartNumber(pn, 'free'), `free ${pn}`)
  }
})

test('never-taken tokens fail in both contexts', async (t) => {
  for (const token of NEVER) {
    t.notOk(isPartNumber(token, 'free'), `free ${token}`)
    t.notOk(isPartNumber(token, 'labelled'), `labelled ${token}`)
  }
})

test('CPF and CNPJ check digits', async (t) => {
  t.ok(validCpf('12345678909'))
  t.notOk(validCpf('12345678900'))
  t.ok(validCnpj('12345678000195'))
  t.notOk(validCnpj('12345678000190'))
})

test('prefixes in text', async (t) => {
  t.same(prefixedCodes('Item: PN: BC847BLT1G, P/N LM358N e MPN:STM32F103C8T6'), ['BC847BLT1G', 'LM358N', 'STM32F103C8T6'])
  t.same(prefixedCodes('Cód. Fabricante: TPS62130RGTR; Part No.: 1N4148W-7-F'), ['TPS62130RGTR', '1N4148W-7-F'])
  t.same(prefixedCodes('PN junction, PN: N/A, NPN 45V, P/N: 12/03/2025, PN 2024'), [])
})

test('codes in descriptions skip labelled order numbers and lots', async (t) => {
  t.same(descriptionCodes('TRANSISTOR BC847BLT1G SOT-23 lote L2305-12 pedido nº PO4500123'), ['BC847BLT1G'])
  t.same(descriptionCodes('Capacitor 100nF 50V X7R 0603 conforme NF-e 000.123.456'), [])
})

test('quantities in Brazilian and English notation', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['1.000', 1000], ['1,000', 1000], ['2.500,00', 2500], ['1,234.50', 1234.5], ['2,5', 2.5], ['0.5', 0.5],
    ['10 pcs', 10], ['100 UN', 100], ['12.345.678', 12345678], ['', undefined], ['abc', undefined], ['1.00.0', undefined],
  ]
  for (const [cell, want] of cases) t.equal(parseQuantity(cell), want, JSON.stringify(cell))
})
