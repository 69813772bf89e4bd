/**
 * Purchase-order PDFs generated in memory with pdfkit, each with the part numbers it must yield.
 *
 * Line numbers follow the extractor's definition: 1-based per page, counting every line of text in
 * reading order; inside a two-column region the left column's lines come before the right column's.
 * The Sheet helper counts lines as it draws them so the expectations cannot drift from the drawing.
 * Duplicates are merged the way the extractor documents it: first page/line/description, summed quantity.
 */
import PDFDocument from 'pdfkit'

export interface ExpectedPart {
  partnumber: string
  page: number
  line: number
  description?: string
  quantity?: number
}

export interface Fixture {
  name: string
  about: string
  pdf: Buffer
  expected: ExpectedPart[]
}

export interface Cell {
  x: number
  text: string
  align: 'left' | 'right'
}
/** A left-aligned cell starting at x. */
export const L = (x: number, text: string): Cell => ({ x, text, align: 'left' })
/** A right-aligned cell ending at x. */
export const R = (x: number, text: string): Cell => ({ x, text, align: 'right' })

interface LineStyle {
  size?: number
  bold?: boolean
  font?: 'Helvetica' | 'Courier'
  /** Distance to the next line. */
  lead?: number
}

interface PageStyle {
  layout?: 'portrait' | 'landscape'
  /** Portrait page whose content is drawn rotated a quarter turn (a landscape table printed sideways). */
  sideways?: boolean
  /** Like sideways, but the page carries /Rotate 90 so viewers show it upright. */
  rotateAttr?: boolean
}

export class Sheet {
  readonly expected: ExpectedPart[] = []
  page = 0
  lineNo = 0
  y = 0
  private readonly doc: PDFKit.PDFDocument
  private readonly bytes: Promise<Buffer>
  private offsetX = 0
  private rotated = false

  constructor(options: PDFKit.PDFDocumentOptions = {}) {
    this.doc = new PDFDocument({ autoFirstPage: false, margin: 0, size: 'A4', ...options })
    const chunks: Buffer[] = []
    this.doc.on('data', (c: Buffer) => chunks.push(c))
    this.bytes = new Promise((resolve) => this.doc.on('end', () => resolve(Buffer.concat(chunks))))
  }

  newPage(style: PageStyle = {}): this {
    if (this.rotated) this.doc.restore()
    this.doc.addPage({ margin: 0, size: 'A4', layout: style.layout ?? 'portrait' })
    this.rotated = Boolean(style.sideways || style.rotateAttr)
    this.offsetX = 0
    if (this.rotated) {
      if (style.rotateAttr) (this.doc.page as unknown as { dictionary: { data: Record<string, unknown> } }).dictionary.data.Rotate = 90
      this.doc.save()
      this.doc.rotate(-90, { origin: [0, 0] })
      this.offsetX = -this.doc.page.height // frame x runs over the page height
    }
    this.page++
    this.lineNo = 0
    this.y = 40
    return this
  }

  /** Draw cells on the current line without counting it. */
  draw(cells: Cell[], style: LineStyle = {}, y = this.y): void {
    const size = style.size ?? 9
    const family = style.font ?? 'Helvetica'
    this.doc.font(style.bold ? `${family}-Bold` : family).fontSize(size)
    for (const cell of cells) {
      if (!cell.text) continue
      const x = cell.align === 'right' ? cell.x - this.doc.widthOfString(cell.text) : cell.x
      this.doc.text(cell.text, x + this.offsetX, y, { lineBreak: false })
    }
  }

  /** Draw one line of text and return its number. */
  line(cells: Cell[], style: LineStyle = {}): number {
    this.draw(cells, style)
    this.y += style.lead ?? Math.round((style.size ?? 9) * 1.45)
    return ++this.lineNo
  }

  text(text: string, style: LineStyle = {}, x = 40): number {
    return this.line([L(x, text)], style)
  }

  gap(dy: number): this {
    this.y += dy
    return this
  }

  /**
   * Two columns side by side, row k of each at the same height (plus `rightShift`). Returns the line
   * numbers of each column's rows (0 for an empty row): left column first, then right.
   */
  columns(left: Cell[][], right: Cell[][], style: LineStyle & { rightShift?: number } = {}): { left: number[]; right: number[] } {
    const lead = style.lead ?? 13
    const top = this.y
    const rows = Math.max(left.length, right.length)
    for (let k = 0; k < rows; k++) {
      const rowStyle = { ...style, bold: style.bold || k === 0 ? style.bold : false }
      this.draw(left[k] ?? [], rowStyle, top + k * lead)
      this.draw(right[k] ?? [], rowStyle, top + k * lead + (style.rightShift ?? 0))
    }
    const number = (cells: Cell[] | undefined) => (cells?.some((c) => c.text) ? ++this.lineNo : 0)
    const leftNos = left.map(number)
    const rightNos = right.map(number)
    this.y = top + rows * lead + (style.rightShift ?? 0)
    return { left: leftNos, right: rightNos }
  }

  expect(partnumber: string, line: number, extra: { description?: string; quantity?: number } = {}): this {
    const seen = this.expected.find((e) => e.partnumber.toUpperCase() === partnumber.toUpperCase())
    if (seen) {
      if (extra.quantity !== undefined) seen.quantity = (seen.quantity ?? 0) + extra.quantity
      if (seen.description === undefined && extra.description !== undefined) seen.description = extra.description
      return this
    }
    this.expected.push({ partnumber, page: this.page, line, ...extra })
    return this
  }

  async end(): Promise<Buffer> {
    if (this.rotated) this.doc.restore()
    this.doc.end()
    return this.bytes
  }
}

/** Realistic parts with Portuguese descriptions (units, packages and standards included on purpose). */
export const CATALOG: Array<[pn: string, description: string]> = [
  ['BC847BLT1G', 'Transistor NPN 45V 100mA SOT-23'],
  ['MMBT3904LT1G', 'Transistor NPN 40V 200mA SOT-23'],
  ['CL10C330JB8NNNC', 'Capacitor cerâmico 33pF 50V C0G 0603'],
  ['GRM188R71H104KA93D', 'Capacitor cerâmico 100nF 50V X7R 0603'],
  ['LM358N', 'Amplificador operacional duplo DIP-8'],
  ['STM32F103C8T6', 'Microcontrolador ARM Cortex-M3 72MHz 64KB Flash LQFP-48'],
  ['RC0603FR-0710KL', 'Resistor 10k 1% 1/10W 0603'],
  ['1N4148W-7-F', 'Diodo de sinal 100V 150mA SOD-123'],
  ['SN74HC595DR', 'Registrador de deslocamento 8 bits SOIC-16'],
  ['TPS62130RGTR', 'Conversor buck 3A 3-17V VQFN-16'],
  ['ATMEGA328P-AU', 'Microcontrolador AVR 8-bit 32KB TQFP-32'],
  ['744031220', 'Indutor 22uH 1.05A SMD'],
  ['LM2596S-5.0/NOPB', 'Regulador chaveado 5V 3A TO-263'],
  ['MAX3232CSE+', 'Transceptor RS-232 3V a 5.5V SOIC-16'],
  ['ESP32-WROOM-32E', 'Módulo Wi-Fi BLE 4MB'],
  ['CRCW060310K0FKEA', 'Resistor 10k 1% 0603'],
  ['AO3400A', 'MOSFET canal N 30V 5.7A SOT-23'],
  ['BSS138LT1G', 'MOSFET canal N 50V 200mA SOT-23'],
  ['NE555DR', 'Temporizador SOIC-8'],
  ['TL072CDR', 'Amplificador operacional JFET SOIC-8'],
  ['LT1763CS8-3.3#PBF', 'Regulador LDO 3.3V 500mA SO-8'],
  ['43045-0412', 'Conector Micro-Fit 3.0 4 vias'],
  ['USBLC6-2SC6', 'Proteção ESD USB SOT-23-6'],
  ['SMAJ5.0A', 'Diodo TVS 5V 400W SMA'],
  ['B57861S0103F040', 'Termistor NTC 10k'],
  ['ADXL345BCCZ', 'Acelerômetro 3 eixos LGA-14'],
  ['FT232RL-REEL', 'Conversor USB-UART SSOP-28'],
  ['XC6206P332MR', 'Regulador LDO 3.3V 200mA SOT-23'],
  ['MCP2551-I/SN', 'Transceptor CAN SOIC-8'],
  ['IRLML6402TRPBF', 'MOSFET canal P 20V 3.7A SOT-23'],
  ['B0520LW-7-F', 'Diodo Schottky 20V 500mA SOD-123'],
  ['KSZ8081RNACA-TR', 'PHY Ethernet 10/100 QFN-24'],
  ['W25Q128JVSIQ', 'Memória Flash SPI 128Mbit SOIC-8'],
  ['SRR1260-100M', 'Indutor 10uH 7.6A'],
]
const part = (i: number) => CATALOG[i % CATALOG.length]!

const fmtBr = (n: number) => n.toLocaleString('pt-BR')
const moneyBr = (n: number) => n.toLocaleString('pt-BR', { minimumFractionDigits: 2, maximumFractionDigits: 4 })
const moneyEn = (n: number) => n.toLocaleString('en-US', { minimumFractionDigits: 2 })

async function englishTable(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('PURCHASE ORDER', { size: 14, bold: true, lead: 24 })
  s.text('PO Number: PO-2024-0153 | Date: 2024-03-12 | Terms: Net 30')
  s.text('Vendor: Mouser Electronics, 1000 N Main Street, Mansfield, TX 76063, USA')
  s.text('Phone: +1 (817) 804-3888 | Email: sales@mouser.com | www.mouser.com')
  s.gap(10)
  const cols = { item: 40, pn: 62, desc: 180, qty: 420, unit: 480, ext: 550 }
  s.line([L(cols.item, 'Item'), L(cols.pn, 'Part Number'), L(cols.desc, 'Description'), R(cols.qty, 'Qty'), R(cols.unit, 'Unit Price'), R(cols.ext, 'Ext. Price')], { bold: true })
  const rows: Array<[number, string, string, number, number]> = [
    [1, 'BC847BLT1G', 'Bipolar Transistor NPN 45V 100mA SOT-23', 3000, 0.021],
    [2, 'CL10C330JB8NNNC', 'MLCC 33pF 50V C0G 0603 5%', 4000, 0.008],
    [3, 'LM358N', 'Dual Op Amp 32V DIP-8', 50, 0.42],
    [4, 'GRM188R71H104KA93D', 'MLCC 0.1uF 50V X7R 0603 10%', 10000, 0.006],
    [5, 'STM32F103C8T6', 'MCU 32-bit ARM Cortex-M3 64KB Flash LQFP-48', 120, 3.85],
    [6, 'RC0603FR-0710KL', 'Thick Film Resistor 10k 1% 1/10W 0603', 5000, 0.004],
    [7, '1N4148W-7-F', 'Switching Diode 100V 300mA SOD-123', 2500, 0.03],
    [8, 'SN74HC595DR', '8-bit Shift Register SOIC-16', 300, 0.29],
  ]
  for (const [item, pn, desc, qty, unit] of rows) {
    const no = s.line([L(cols.item, String(item)), L(cols.pn, pn), L(cols.desc, desc), R(cols.qty, qty.toLocaleString('en-US')), R(cols.unit, moneyEn(unit)), R(cols.ext, moneyEn(qty * unit))])
    s.expect(pn, no, { description: desc, quantity: qty })
  }
  s.gap(8)
  s.line([L(cols.desc, 'Subtotal'), R(cols.ext, '$ 1,234.56')])
  s.text('Ship to: Nexa Eletrônica Ltda, Av. Paulista 1000, São Paulo SP 01310-100, Brazil')
  return { name: 'english-table', about: 'English header, item numbers, prices', pdf: await s.end(), expected: s.expected }
}

async function portugueseTable(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('PEDIDO DE COMPRA Nº 4500123', { size: 13, bold: true, lead: 22 })
  s.text('Fornecedor: Arrow Brasil S.A. - CNPJ: 12.345.678/0001-95 - IE: 123.456.789.110')
  s.text('Emissão: 12/03/2025 - Entrega: 30/03/2025 - Condição: 28 DDL')
  s.gap(6)
  // Supplier and buyer side by side: read as two columns, which changes nothing below.
  s.columns(
    [[L(40, 'Fornecedor:')], [L(40, 'Arrow Brasil S.A.')], [L(40, 'Rua Funchal 418, 8º andar')], [L(40, 'São Paulo/SP - CEP 04551-060')]],
    [[L(320, 'Faturar para:')], [L(320, 'Nexa Eletrônica Ltda')], [L(320, 'Av. Paulista 1000')], [L(320, 'CNPJ 98.765.432/0001-10')]],
    { size: 9, lead: 12 },
  )
  s.gap(10)
  const c = { item: 30, cod: 55, desc: 160, qtd: 365, un: 376, ncm: 398, preco: 500, total: 565 }
  s.line([L(c.item, 'Item'), L(c.cod, 'Código'), L(c.desc, 'Descrição'), R(c.qtd, 'Qtd'), L(c.un, 'Un'), L(c.ncm, 'NCM'), R(c.preco, 'Preço Unit.'), R(c.total, 'Total')], { bold: true, size: 8 })
  const rows: Array<[string, string, number, string, number]> = [
    ['MMBT3904LT1G', 'Transistor NPN 40V 200mA SOT-23', 1000, '8541.21.20', 0.045],
    ['TPS62130RGTR', 'Conversor buck 3A 3-17V VQFN-16', 250, '8542.39.91', 4.1],
    ['ATMEGA328P-AU', 'Microcontrolador AVR 8-bit TQFP-32', 2500, '8542.31.90', 9.5],
    ['744031220', 'Indutor 22uH 1.05A SMD', 500, '8504.50.00', 0.32],
    ['LM2596S-5.0/NOPB', 'Regulador chaveado 5V 3A TO-263', 80, '8542.39.91', 6.75],
    ['MAX3232CSE+', 'Transceptor RS-232 SOIC-16', 40, '8542.39.91', 5.2],
    ['43045-0412', 'Conector Micro-Fit 3.0 4 vias', 1200, '8536.69.90', 0.88],
  ]
  rows.forEach(([pn, desc, qtd, ncm, preco], i) => {
    const no = s.line([L(c.item, String(i + 1)), L(c.cod, pn), L(c.desc, desc), R(c.qtd, fmtBr(qtd)), L(c.un, 'PC'), L(c.ncm, ncm), R(c.preco, moneyBr(preco)), R(c.total, moneyBr(qtd * preco))], { size: 8 })
    s.expect(pn, no, { description: desc, quantity: qtd })
  })
  s.gap(8)
  s.line([L(c.desc, 'Valor total do pedido:'), R(c.total, 'R$ 3.456,78')], { size: 8 })
  s.text('Observações: entregar no almoxarifado, Rua Augusta 1500, CEP 01310-100, São Paulo/SP.', { size: 8 })
  s.text('Dúvidas: compras@nexa.com.br - (11) 3456-7890', { size: 8 })
  return { name: 'portuguese-table', about: 'Código/Descrição/Qtd/Un/NCM/Preço columns, Brazilian numbers', pdf: await s.end(), expected: s.expected }
}

async function codFabricante(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('ORDEM DE COMPRA OC-2025-0311', { size: 13, bold: true, lead: 22 })
  s.text('Comprador: Nexa Eletrônica Ltda - CNPJ 98.765.432/0001-10')
  s.gap(8)
  const c = { item: 36, cod: 60, desc: 130, fab: 330, qtd: 480, valor: 550 }
  // Two-line header: "Cód." over "Fabricante"
  s.line([L(c.item, 'Item'), L(c.cod, 'Código'), L(c.desc, 'Descrição'), L(c.fab, 'Cód.'), R(c.qtd, 'Qtde'), R(c.valor, 'Valor Unit.')], { bold: true, lead: 10 })
  s.line([L(c.fab, 'Fabricante')], { bold: true })
  const rows: Array<[string, string, string, number]> = [
    ['MAT-004512', 'Capacitor cerâmico 33pF 50V', 'CL10C330JB8NNNC', 4000],
    ['MAT-004513', 'Capacitor cerâmico 100nF 50V', 'GRM188R71H104KA93D', 8000],
    ['MAT-001207', 'Transistor NPN 45V SOT-23', 'BC847BLT1G', 3000],
    ['MAT-002210', 'Resistor 10k 1% 0603', 'CRCW060310K0FKEA', 10000],
    ['MAT-003001', 'Regulador LDO 3.3V 200mA', 'XC6206P332MR', 600],
    // no manufacturer code: the description's part number stands in, the internal code does not
    ['MAT-003002', 'MOSFET AO3400A canal N 30V', '', 900],
    ['MAT-000077', 'Memória Flash SPI 128Mbit', 'W25Q128JVSIQ', 150],
  ]
  rows.forEach(([cod, desc, fab, qtd], i) => {
    const no = s.line([L(c.item, String(i + 1)), L(c.cod, cod), L(c.desc, desc), L(c.fab, fab), R(c.qtd, fmtBr(qtd)), R(c.valor, moneyBr(0.1 * (i + 1)))])
    s.expect(fab || 'AO3400A', no, { description: desc, quantity: qtd })
  })
  return { name: 'cod-fabricante', about: 'Cód. Fabricante column (two-line header) beside an internal Código', pdf: await s.end(), expected: s.expected }
}

async function prefixesInText(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('Solicitação de cotação', { size: 13, bold: true, lead: 22 })
  s.text('Prezados, solicitamos cotação para os itens abaixo, com entrega em 15/04/2025.')
  const lines: Array<[string, string?]> = [
    ['1) Microcontrolador, PN: STM32F103C8T6, 250 peças', 'STM32F103C8T6'],
    ['2) Regulador buck P/N TPS62130RGTR (Texas Instruments)', 'TPS62130RGTR'],
    ['3) MPN: ATMEGA328P-AU - 100 pcs', 'ATMEGA328P-AU'],
    ['4) Shift register, Mfr P/N: SN74HC595DR, em rolo', 'SN74HC595DR'],
    ['5) Amplificador Part No.: LM358N', 'LM358N'],
    ['6) Transistor MPN:MMBT3904LT1G', 'MMBT3904LT1G'],
    ['7) Capacitor Cód. Fabricante: CL10C330JB8NNNC', 'CL10C330JB8NNNC'],
    ['8) Conector PN: N/A (a definir com a engenharia)'],
    ['Obs.: diodos de junção PN comuns não atendem; PN junction types excluded.'],
    ['Referente ao Pedido nº 4500123 e NF-e 000.123.456 - P/N: 1N4148W-7-F', '1N4148W-7-F'],
    ['9) Referência do fabricante: GRM188R71H104KA93D', 'GRM188R71H104KA93D'],
    ['10) P/N: BC847BLT1G; alternativa p/n bc847blt1g da mesma família', 'BC847BLT1G'],
    ['11) PN 2024 e PN: 12/03/2025 não são códigos.'],
  ]
  for (const [text, pn] of lines) {
    const no = s.text(text)
    if (pn) s.expect(pn, no)
  }
  s.gap(10)
  s.text('Atenciosamente, Departamento de Compras - compras@nexa.com.br')
  // Later mention in lower case is the same part
  const no = s.text('Reforçando: p/n stm32f103c8t6 é prioritário.')
  s.expect('stm32f103c8t6', no)
  return { name: 'prefixes-free-text', about: 'PN:, P/N, MPN and similar prefixes in running text', pdf: await s.end(), expected: s.expected }
}

async function descriptionOnly(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('ORDEM DE COMPRA 2025/0042', { size: 13, bold: true, lead: 22 })
  s.gap(6)
  const c = { item: 40, desc: 70, qtd: 420, un: 430, valor: 520 }
  s.line([L(c.item, 'Item'), L(c.desc, 'Descrição'), R(c.qtd, 'Qtd'), L(c.un, 'Un'), R(c.valor, 'Valor Unit.')], { bold: true })
  const rows: Array<[string, number, string?]> = [
    ['CI MICROCONTROLADOR STM32F103C8T6 LQFP-48 72MHZ', 100, 'STM32F103C8T6'],
    ['TRANSISTOR NPN BC847BLT1G SOT-23 45V', 3000, 'BC847BLT1G'],
    ['RESISTOR 10K 1% 0603 RC0603FR-0710KL', 5000, 'RC0603FR-0710KL'],
    ['CAPACITOR 100NF 50V X7R 0603 GRM188R71H104KA93D', 4000, 'GRM188R71H104KA93D'],
    ['DIODO 1N4148W-7-F SOD-123', 1000, '1N4148W-7-F'],
    ['CONECTOR RJ45 FEMEA 8 VIAS', 20],
    ['ETIQUETA ADESIVA 50X30MM', 2000],
    ['CI REGULADOR TPS62130RGTR VQFN-16 3A', 150, 'TPS62130RGTR'],
    ['MODULO ESP32-WROOM-32E 4MB', 30, 'ESP32-WROOM-32E'],
    ['CABO USB-C 1M', 10],
    ['CI DRIVER CAN MCP2551-I/SN SOIC-8', 60, 'MCP2551-I/SN'],
  ]
  rows.forEach(([desc, qtd, pn], i) => {
    const no = s.line([L(c.item, String(i + 1)), L(c.desc, desc), R(c.qtd, fmtBr(qtd)), L(c.un, 'PC'), R(c.valor, moneyBr(1.5 * (i + 1)))])
    if (pn) s.expect(pn, no, { description: desc, quantity: qtd })
  })
  return { name: 'description-only', about: 'No code column: part numbers inside the description cell', pdf: await s.end(), expected: s.expected }
}

async function multiPageTable(): Promise<Fixture> {
  const s = new Sheet()
  const c = { item: 40, mpn: 65, fab: 165, desc: 222, qtd: 515, preco: 565 }
  const header = () =>
    s.line([L(c.item, '#'), L(c.mpn, 'MPN'), L(c.fab, 'Fabricante'), L(c.desc, 'Descrição'), R(c.qtd, 'Qtd'), R(c.preco, 'Preço')], { bold: true })
  let item = 0
  const pages = 4
  for (let p = 1; p <= pages; p++) {
    s.newPage()
    s.text(`Pedido 4500777 - continuação - página ${p} de ${pages}`, { size: 8 })
    s.gap(6)
    // The last page continues the table without repeating its header.
    if (p < pages) header()
    for (let r = 0; r < 22; r++) {
      // Every 9th row repeats an earlier part: merged into the first, quantities summed.
      const [pn, desc] = item % 9 === 8 ? part(item - 8) : part(item)
      const qtd = 10 * (item + 1)
      const no = s.line([L(c.item, String(item + 1)), L(c.mpn, pn), L(c.fab, 'Diversos'), L(c.desc, desc), R(c.qtd, fmtBr(qtd)), R(c.preco, moneyBr(0.5))])
      s.expect(pn, no, { description: desc, quantity: qtd })
      item++
    }
    s.gap(40)
    s.text(`Página ${p}/${pages}`, { size: 8 }, 500)
  }
  return { name: 'multi-page-table', about: 'Table over 4 pages, header repeated on 3, duplicates across pages', pdf: await s.end(), expected: s.expected }
}

async function landscape(): Promise<Fixture> {
  const s = new Sheet()
  const c = { item: 40, pn: 65, mfr: 190, desc: 290, qty: 560, uom: 570, ncm: 600, unit: 705, total: 770, date: 780 }
  const table = (rows: number[]) => {
    s.line([L(c.item, 'Item'), L(c.pn, 'Part Number'), L(c.mfr, 'Manufacturer'), L(c.desc, 'Description'), R(c.qty, 'Qty'), L(c.uom, 'UoM'), L(c.ncm, 'NCM'), R(c.unit, 'Unit Price'), R(c.total, 'Total'), L(c.date, 'Delivery')], { bold: true })
    for (const i of rows) {
      const [pn, desc] = part(i)
      const qty = 100 * (i + 1)
      const no = s.line([L(c.item, String(i + 1)), L(c.pn, pn), L(c.mfr, 'Various'), L(c.desc, desc), R(c.qty, qty.toLocaleString('en-US')), L(c.uom, 'EA'), L(c.ncm, '8542.39.91'), R(c.unit, moneyEn(0.25)), R(c.total, moneyEn(qty * 0.25)), L(c.date, '2025-05-01')])
      s.expect(pn, no, { description: desc, quantity: qty })
    }
  }
  s.newPage({ layout: 'landscape' })
  s.text('PURCHASE ORDER 7781 (landscape)', { size: 13, bold: true, lead: 22 })
  table([10, 11, 12, 13, 14, 15])
  s.newPage({ sideways: true })
  s.text('PURCHASE ORDER 7781 - page 2 (printed sideways)', { size: 13, bold: true, lead: 22 })
  table([16, 17, 18, 19, 20])
  s.newPage({ rotateAttr: true })
  s.text('PURCHASE ORDER 7781 - page 3 (/Rotate 90)', { size: 13, bold: true, lead: 22 })
  table([21, 22, 23, 24])
  return { name: 'landscape', about: 'Landscape page, sideways table on a portrait page, /Rotate 90 page', pdf: await s.end(), expected: s.expected }
}

async function twoColumn(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('LISTA DE MATERIAIS - PROJETO NX-200 - REVISÃO B - EMITIDA EM 02/04/2025 PELA ENGENHARIA DE PRODUTO', { size: 9 })
  s.gap(8)
  const leftParts = [0, 1, 2, 3, 4, 5, 6, 7]
  const rightParts = [8, 9, 10, 11, 12, 13]
  const row = (x: number, i: number) => [L(x, part(i)[0]), R(x + 200, fmtBr(5 * (i + 1)))]
  const left = [[L(40, 'Part Number'), R(240, 'Qtd')], ...leftParts.map((i) => row(40, i))]
  const right = [[L(320, 'Part Number'), R(520, 'Qtd')], ...rightParts.map((i) => row(320, i))]
  const nos = s.columns(left, right, { lead: 13 })
  leftParts.forEach((i, k) => s.expect(part(i)[0], nos.left[k + 1]!, { quantity: 5 * (i + 1) }))
  rightParts.forEach((i, k) => s.expect(part(i)[0], nos.right[k + 1]!, { quantity: 5 * (i + 1) }))
  s.gap(10)
  s.text('Observações: todos os componentes devem atender RoHS e ser entregues em embalagem antiestática lacrada.')

  // Page 2: two columns of running text whose baselines do not line up.
  s.newPage()
  s.text('NOTAS DE APLICAÇÃO E SUBSTITUIÇÕES APROVADAS PARA O PROJETO NX-200 (USO INTERNO DA ENGENHARIA)')
  s.gap(8)
  const proseL = [
    'Fonte principal: usar o regulador',
    'PN: LM2596S-5.0/NOPB com indutor',
    'de 33uH e capacitor de 220uF/35V.',
    'Na proteção da USB adotar',
    'MPN: USBLC6-2SC6 junto ao conector.',
    'Termistor de placa P/N B57861S0103F040.',
  ]
  const proseR = [
    'Comunicação serial: o transceptor',
    'P/N MAX3232CSE+ pode ser trocado',
    'somente com aprovação formal.',
    'Sensor de vibração: Part No.: ADXL345BCCZ',
    'em encapsulamento LGA-14.',
  ]
  const cols = s.columns(proseL.map((t) => [L(40, t)]), proseR.map((t) => [L(320, t)]), { rightShift: 6 })
  s.expect('LM2596S-5.0/NOPB', cols.left[1]!)
  s.expect('USBLC6-2SC6', cols.left[4]!)
  s.expect('B57861S0103F040', cols.left[5]!)
  s.expect('MAX3232CSE+', cols.right[1]!)
  s.expect('ADXL345BCCZ', cols.right[3]!)
  return { name: 'two-column', about: 'Side-by-side tables, and two columns of prose with offset baselines', pdf: await s.end(), expected: s.expected }
}

async function wrappedRows(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('PEDIDO DE COMPRA 4501010', { size: 13, bold: true, lead: 22 })
  const c = { item: 40, pn: 62, desc: 190, qtd: 470, preco: 550 }
  s.line([L(c.item, 'Item'), L(c.pn, 'Part Number'), L(c.desc, 'Descrição'), R(c.qtd, 'Qtd'), R(c.preco, 'Preço')], { bold: true })
  const rows: Array<[string[], string[], number]> = [
    [['KSZ8081RNACA-TR'], ['PHY Ethernet 10/100 com interface RMII,', 'encapsulamento QFN-24, temperatura', 'industrial -40 a 85C'], 120],
    [['FT232RL-REEL'], ['Conversor USB para UART SSOP-28'], 200],
    [['RC0603FR-', '0710KL'], ['Resistor de filme espesso 10k 1%', '1/10W 0603 (código quebrado na coluna)'], 5000],
    [['IRLML6402TRPBF'], ['MOSFET canal P 20V 3.7A SOT-23,', 'substitui o antigo Si2301'], 700],
    [['B0520LW-7-F'], ['Diodo Schottky 20V 500mA SOD-123'], 1500],
  ]
  rows.forEach(([pn, desc, qtd], i) => {
    const n = Math.max(pn.length, desc.length)
    let first = 0
    for (let k = 0; k < n; k++) {
      const cells = k === 0 ? [L(c.item, String(i + 1)), R(c.qtd, fmtBr(qtd)), R(c.preco, moneyBr(0.9))] : []
      const no = s.line([...cells, L(c.pn, pn[k] ?? ''), L(c.desc, desc[k] ?? '')], { lead: k === n - 1 ? 14 : 11 })
      if (k === 0) first = no
    }
    s.expect(pn.join(''), first, { description: desc.join(' '), quantity: qtd })
  })
  s.gap(16)
  // A second table without a code column; one part number sits on the wrapped line.
  s.line([L(c.item, 'Item'), L(c.pn, 'Descrição'), R(c.qtd, 'Qtd'), R(c.preco, 'Preço')], { bold: true })
  const descRows: Array<[string[], number, string?]> = [
    [['Diodo de sinal rápido 100V 150mA SOD-123 do', 'fabricante Diodes Inc, modelo 1N4148W-7-F'], 800, '1N4148W-7-F'],
    [['Cabo flat 10 vias 30cm'], 50],
    [['Temporizador de precisão, equivalente', 'ao NE555DR, em rolo'], 300, 'NE555DR'],
  ]
  descRows.forEach(([desc, qtd, pn], i) => {
    let first = 0
    desc.forEach((d, k) => {
      const cells = k === 0 ? [L(c.item, String(i + 1)), R(c.qtd, fmtBr(qtd)), R(c.preco, moneyBr(0.2))] : []
      const no = s.line([...cells, L(c.pn, d)], { lead: k === desc.length - 1 ? 14 : 11 })
      if (k === 0) first = no
    })
    if (pn) s.expect(pn, first, { description: desc.join(' '), quantity: qtd })
  })
  return { name: 'wrapped-rows', about: 'Descriptions and a code wrapping onto following lines', pdf: await s.end(), expected: s.expected }
}

/** An ERP spool printout: fixed-pitch text, each row one string, columns made of spaces. */
async function monospaceReport(): Promise<Fixture> {
  const s = new Sheet().newPage()
  const mono = { size: 8, lead: 11, font: 'Courier' } as const
  const row = (item: string, material: string, desc: string, qtd: string, un: string, preco: string) =>
    `${item.padEnd(4)}  ${material.padEnd(18)}  ${desc.padEnd(35)}  ${qtd.padStart(7)}  ${un.padEnd(2)}  ${preco.padStart(10)}`
  s.text('NEXA ELETRONICA LTDA                                   PEDIDO DE COMPRA 4500999', mono, 30)
  s.text('FORNECEDOR: 0000123456 ARROW BRASIL S.A.               DATA: 12.03.2025', mono, 30)
  s.gap(11)
  s.text(row('ITEM', 'MATERIAL', 'DESCRICAO', 'QTD', 'UN', 'PRECO'), mono, 30)
  s.text(row('----', '-'.repeat(18), '-'.repeat(35), '-'.repeat(7), '--', '-'.repeat(10)), mono, 30)
  const items: Array<[string, string, number, string?]> = [
    ['BC847BLT1G', 'TRANSISTOR NPN 45V SOT-23', 3000],
    ['GRM188R71H104KA93D', 'CAP CER 100NF 50V X7R 0603', 10000],
    ['STM32F103C8T6', 'MCU ARM CORTEX-M3 LQFP-48', 120, '      OBS: FORNECEDOR ALTERNATIVO MOUSER ELECTRONICS'],
    ['1N4148W-7-F', 'DIODO 100V SOD-123', 2500],
    ['SN74HC595DR', 'CI SHIFT REGISTER 8 BITS SOIC-16', 300],
  ]
  items.forEach(([pn, desc, qtd, note], i) => {
    const no = s.text(row(String((i + 1) * 10).padStart(4, '0'), pn, desc, fmtBr(qtd), 'PC', moneyBr(0.021 * (i + 1))), mono, 30)
    const description = note ? `${desc} ALTERNATIVO MOUSER ELECTRONICS` : desc
    if (note) s.text(note, mono, 30)
    s.expect(pn, no, { description, quantity: qtd })
  })
  s.gap(11)
  s.text(`TOTAL DO PEDIDO${' '.repeat(64)}1.234,56`, mono, 30)
  return { name: 'monospace-report', about: 'Fixed-pitch ERP printout, one string per row', pdf: await s.end(), expected: s.expected }
}

/** Everything that must never come out as a part number, around a few that must. */
async function neverTaken(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('PEDIDO DE COMPRA Nº 4500123 DE 12/03/2025', { size: 12, bold: true, lead: 20 })
  for (const t of [
    'Nexa Eletrônica Ltda - CNPJ: 12.345.678/0001-95 - CNPJ 12345678000195 - IE: 123.456.789.110',
    'Responsável: João Silva - CPF 123.456.789-09 - CPF 12345678909',
    'Tel: (11) 3456-7890 / (11) 98765-4321 / +55 11 98765-4321 / 11987654321',
    'E-mail: compras@nexa.com.br - Site: https://www.nexa.com.br/compras - www.nexa.com.br',
    'Endereço: Av. Paulista, 1000, 10º andar, CEP 01310-100, São Paulo/SP',
    'PO # PO-2024-0012 - Invoice INV-2024-0042 - NF-e 000.123.456 - Nota Fiscal nº 4521',
    'NCM 8542.39.91 / 85423991 - Data 2025-03-12 - Valor R$ 1.234,56 - US$ 12.50',
    'PN: N/A - P/N: 12/03/2025 - MPN: (11) 3456-7890 - PN: compras@nexa.com.br - PN 2024',
  ]) s.text(t, { size: 8 })
  s.gap(8)
  const c = { cod: 40, desc: 150, ncm: 350, qtd: 440, preco: 500, ent: 510 }
  s.line([L(c.cod, 'Código'), L(c.desc, 'Descrição'), L(c.ncm, 'NCM'), R(c.qtd, 'Qtd'), R(c.preco, 'Preço'), L(c.ent, 'Entrega')], { bold: true, size: 8 })
  const rows: Array<[string, string, number]> = [
    ['BSS138LT1G', 'MOSFET canal N 50V 200mA SOT-23', 1000],
    ['NE555DR', 'Temporizador 4.5-16V SOIC-8', 200],
    ['TL072CDR', 'Amplificador JFET NF-e 000.123.456', 150],
    ['N/A', 'Frete - Pedido nº 4500123', 1],
    ['-', 'Embalagem especial 50x30x20cm', 1],
  ]
  for (const [cod, desc, qtd] of rows) {
    const no = s.line([L(c.cod, cod), L(c.desc, desc), L(c.ncm, '8542.39.91'), R(c.qtd, fmtBr(qtd)), R(c.preco, 'R$ 12,50'), L(c.ent, '15/04/2025')], { size: 8 })
    if (/\d/.test(cod)) s.expect(cod, no, { description: desc, quantity: qtd })
  }
  s.gap(12)
  // No code column here, so every description is scanned for part-number-looking codes.
  const d = { item: 40, desc: 60, qtd: 470, valor: 550 }
  s.line([L(d.item, 'Item'), L(d.desc, 'Descrição'), R(d.qtd, 'Qtd'), R(d.valor, 'Valor')], { bold: true, size: 8 })
  const junk = [
    'Capacitor 100nF 10V 0603 5% X7R, 4u7 16V, 4K7 1/4W 5%',
    'Resistor 0R47 2W, 10k 1% - lote L2305-12, date code 2312',
    'Frete conforme NF-e 000.123.456 / Nota Fiscal 4521 / Invoice INV-2024-0042',
    'Contato compras@nexa.com.br, tel (11) 3456-7890, cel +55 11 98765-4321',
    'Portal www.nexa.com.br/pedidos ou https://fornecedor.com.br/po?id=4500123',
    'Entregar até 15/04/2025 às 10h30 - CEP 01310-100 - 12-Mar-2025',
    'CNPJ 12.345.678/0001-95 / 12345678000195 - CPF 123.456.789-09 / 12345678909',
    'Classificação NCM 8542.39.91 (85423991), CFOP 5102',
    'Ref. pedido nº 4500123, PO # PO-2024-0012, OC-7781, Pedido 4500124',
    'Preço R$ 1.234,56 / US$ 12.50 / total 2.500,00 / 0,0450 por peça',
    'Quantidade 1.000 pçs, 100un, 2x, 3 rolos de 5.000',
    'Parafuso sextavado M3x10 aço inox A2, porca M2.5',
    'Cabo USB-C 2m, conector RJ45 Cat6, caixas SOT-23 / LQFP-48 / QFN-32 / TO-220',
    'Fusível 250V 2A 5x20mm, dissipador 20x20x10mm, IP67, RS-485, I2C, 32-bit',
    'Norma IEC 61000-4-2, ISO9001, AEC-Q100, UL94-V0, RoHS2, MSL3',
    'Validade 12 meses, garantia 1 ano, versão v1.2.3, 2ª via, 10º item',
  ]
  junk.forEach((text, i) => s.line([L(d.item, String(i + 1)), L(d.desc, text), R(d.qtd, '1'), R(d.valor, '1,00')], { size: 8 }))
  return { name: 'never-taken', about: 'CNPJ/CPF, phones, dates, prices, CEP, e-mails, URLs, order numbers, NCM, units', pdf: await s.end(), expected: s.expected }
}

async function noPartNumbers(): Promise<Fixture> {
  const s = new Sheet().newPage()
  s.text('PEDIDO DE SERVIÇOS Nº 880', { size: 13, bold: true, lead: 22 })
  s.text('Prestador: Calibra Metrologia Ltda - CNPJ 11.222.333/0001-81')
  s.gap(8)
  s.line([L(40, 'Item'), L(70, 'Descrição'), R(420, 'Qtd'), R(520, 'Valor')], { bold: true })
  for (const [i, text] of [
    'Serviço de calibração de osciloscópio de 4 canais',
    'Treinamento NR-10 para técnicos (40 horas)',
    'Manutenção preventiva do forno de refusão',
    'Deslocamento técnico e diárias',
  ].entries()) s.line([L(40, String(i + 1)), L(70, text), R(420, '1'), R(520, moneyBr(1500 * (i + 1)))])
  s.gap(10)
  s.text('Valor total: R$ 15.000,00 - pagamento em 30/60/90 dias.')
  return { name: 'no-part-numbers', about: 'A services order: nothing to find', pdf: await s.end(), expected: s.expected }
}

/** Part numbers enough for a thousand mostly distinct order lines. */
function bigCatalog(): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const resistors = ['10R0', '22R0', '47R0', '100R', '220R', '470R', '1K00', '2K20', '4K70', '10K0', '22K0', '47K0', '100K', '220K', '470K', '1M00']
  const tol = ['F', 'J']
  const size = ['0402', '0603', '0805', '1206']
  for (const sz of size) for (const t of tol) for (const r of resistors) out.push([`CRCW${sz}${r}${t}KEA`, `Resistor ${r} ${t === 'F' ? '1%' : '5%'} ${sz}`])
  const caps = ['101', '102', '103', '104', '105', '220', '221', '222', '223', '224', '330', '331', '470', '471', '472', '473']
  const volts: Array<[string, string]> = [['A', '25V'], ['B', '50V'], ['O', '16V']]
  for (const cap of caps) for (const [v, volt] of volts) for (const k of ['J', 'K']) out.push([`CL10C${cap}${k}${v}8NNNC`, `Capacitor cerâmico ${cap} ${volt} 0603`])
  for (const cap of ['102', '103', '104', '105', '223', '473', '224', '474']) for (const v of ['1C', '1E', '1H']) out.push([`GRM188R7${v}${cap}KA93D`, `Capacitor MLCC ${cap} X7R 0603`])
  for (const [pn, desc] of CATALOG) out.push([pn, desc])
  return out
}

/** A 1,000-line order over 30 pages (header repeated on each), with some parts ordered twice. */
export async function bigOrder(): Promise<Fixture> {
  const s = new Sheet()
  const catalog = bigCatalog()
  const c = { item: 30, cod: 52, desc: 148, qtd: 408, un: 415, ncm: 436, preco: 528, total: 575 }
  const perPage = [...Array(30)].map((_, p) => (p < 10 ? 34 : 33))
  let item = 0
  perPage.forEach((rowsOnPage, p) => {
    s.newPage()
    s.text(`PEDIDO DE COMPRA 4509876 - página ${p + 1} de 30`, { size: 10, bold: true, lead: 18 })
    s.line([L(c.item, 'Item'), L(c.cod, 'Código'), L(c.desc, 'Descrição'), R(c.qtd, 'Qtd'), L(c.un, 'Un'), L(c.ncm, 'NCM'), R(c.preco, 'Preço Unit.'), R(c.total, 'Total')], { bold: true, size: 8 })
    for (let r = 0; r < rowsOnPage; r++) {
      // One line in eight orders again a part from earlier in the document.
      const [pn, desc] = item % 8 === 7 ? catalog[(item * 7) % Math.min(item, catalog.length)]! : catalog[item % catalog.length]!
      const qtd = 25 * ((item % 40) + 1)
      const no = s.line([L(c.item, String(item + 1)), L(c.cod, pn), L(c.desc, desc), R(c.qtd, fmtBr(qtd)), L(c.un, 'PC'), L(c.ncm, '8533.21.20'), R(c.preco, moneyBr(0.0125)), R(c.total, moneyBr(qtd * 0.0125))], { size: 8, lead: 20 })
      s.expect(pn, no, { description: desc, quantity: qtd })
      item++
    }
    s.text(`Página ${p + 1}/30 - Nexa Eletrônica Ltda - CNPJ 12.345.678/0001-95`, { size: 7 })
  })
  return { name: 'big-order', about: '1,000 item lines over 30 pages', pdf: await s.end(), expected: s.expected }
}

/** Every fixture that has an expected list (the big order is built separately: it is slow-ish). */
export async function buildFixtures(): Promise<Fixture[]> {
  return Promise.all([
    englishTable(),
    portugueseTable(),
    codFabricante(),
    prefixesInText(),
    descriptionOnly(),
    multiPageTable(),
    landscape(),
    twoColumn(),
    wrappedRows(),
    monospaceReport(),
    neverTaken(),
    noPartNumbers(),
  ])
}

/** A small valid PDF with the given pages of text, and pdfkit options (passwords, ...). */
export async function simplePdf(pages: number, options: PDFKit.PDFDocumentOptions = {}): Promise<Buffer> {
  const s = new Sheet(options)
  for (let p = 0; p < pages; p++) s.newPage().text(`Page ${p + 1} - PN: LM358N`)
  return s.end()
}
