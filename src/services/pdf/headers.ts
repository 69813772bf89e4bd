/**
 * Vocabulary of item-table column headers, English and Portuguese.
 * Labels are compared after normalizeLabel(): lower case, no accents, no dots, single spaces.
 */

export type ColumnKind = 'pn' | 'desc' | 'qty' | 'item' | 'other'

export interface HeaderTerm {
  kind: ColumnKind
  /** For 'pn': 1 = manufacturer part number, 2 = generic code (maybe the buyer's own). Lower wins. */
  rank: number
}

const MANUFACTURER_PN = [
  'part number', 'part no', 'part nr', 'part num', 'part #', 'partnumber', 'part-number', 'part n',
  'p/n', 'pn', 'mpn', 'p n', 'mfr pn', 'mfr p/n', 'mfr part', 'mfr part number', 'mfr part no', 'mfr #',
  'mfg pn', 'mfg p/n', 'mfg part', 'mfg part number', 'mfg part no', 'mfr no', 'mfg no', 'mfr part #',
  'mfg part #', 'manufacturer no', 'manufacturer part #', 'manufacturer part',
  'manufacturer part number', 'manufacturer part no', 'manufacturer pn', 'manufacturer p/n',
  'manufacturer #', 'cod fabricante', 'codigo fabricante', 'codigo do fabricante', 'cod do fabricante',
  'cod fab', 'pn fabricante', 'p/n fabricante', 'part number fabricante', 'part number do fabricante',
  'referencia fabricante', 'referencia do fabricante', 'ref fabricante', 'ref do fabricante',
  'numero da peca', 'numero de peca', 'n da peca', 'no da peca', 'modelo', 'model', 'modelo/pn',
]

const GENERIC_CODE = [
  'codigo', 'cod', 'code', 'item code', 'cod item', 'codigo item', 'codigo do item', 'cod produto',
  'codigo produto', 'codigo do produto', 'cod do produto', 'product code', 'product no', 'referencia',
  'ref', 'reference', 'sku', 'material', 'cod material', 'codigo material', 'codigo do material',
  'artigo', 'article', 'article no', 'catalog no', 'catalogue no', 'cat no', 'your part', 'customer part',
  'our part', 'cod fornecedor', 'codigo fornecedor', 'codigo do fornecedor', 'supplier part',
  'supplier part number', 'vendor part', 'vendor part number',
]

const DESCRIPTION = [
  'descricao', 'description', 'desc', 'descricao do produto', 'descricao do item', 'descricao do material',
  'descricao dos produtos', 'descricao do servico', 'descricao/especificacao', 'produto', 'product',
  'item description', 'product description', 'especificacao', 'discriminacao', 'discriminacao do produto',
  'denominacao', 'designation', 'details',
]

const QUANTITY = [
  'qtd', 'qtde', 'qt', 'quant', 'quantidade', 'qty', 'quantity', 'qnt', 'qtd pedida', 'quantidade pedida',
  'ordered qty', 'order qty', 'qty ordered', 'qtd solicitada',
]

const ITEM = ['item', '#', 'no', 'n', 'nr', 'seq', 'pos', 'position', 'posicao', 'line', 'linha', 'it']

const OTHER = [
  'ncm', 'ncm/sh', 'ncm sh', 'cfop', 'cst', 'un', 'und', 'unid', 'unidade', 'unit', 'uom', 'um', 'u/m',
  'preco', 'preco unit', 'preco unitario', 'preco total', 'valor', 'valor unit', 'valor unitario', 'vl unit',
  'vlr unit', 'vlr unitario', 'valor total', 'vl total', 'vlr total', 'total', 'unit price', 'price',
  'amount', 'ext price', 'extended price', 'extended', 'subtotal', 'ipi', 'icms', 'aliq icms', 'aliq ipi',
  '% ipi', '% icms', 'ipi %', 'icms %', 'entrega', 'data entrega', 'data de entrega', 'prazo',
  'prazo entrega', 'prazo de entrega', 'delivery', 'delivery date', 'due date', 'lead time', 'fabricante',
  'manufacturer', 'mfr', 'mfg', 'marca', 'brand', 'obs', 'observacao', 'remarks', 'notes', 'moeda',
  'currency', 'lote', 'lot', 'date code', 'd/c', 'status', 'cc', 'centro de custo', 'desconto', 'discount',
  'peso', 'weight', 'origem', 'origin', 'coo', 'country of origin', 'aplicacao', 'projeto', 'project',
]

const TERMS = new Map<string, HeaderTerm>()
for (const [list, term] of [
  [OTHER, { kind: 'other', rank: 0 }],
  [ITEM, { kind: 'item', rank: 0 }],
  [QUANTITY, { kind: 'qty', rank: 0 }],
  [DESCRIPTION, { kind: 'desc', rank: 0 }],
  [GENERIC_CODE, { kind: 'pn', rank: 2 }],
  [MANUFACTURER_PN, { kind: 'pn', rank: 1 }],
] as const) {
  for (const label of list) TERMS.set(label, term)
}
const MAX_TERM_WORDS = Math.max(...[...TERMS.keys()].map((k) => k.split(' ').length))

export function stripAccents(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s // the common case, and hot
  // Character by character so that string offsets stay aligned with the original.
  let out = ''
  for (const ch of s) {
    const base = ch.normalize('NFD')[0] ?? ch
    out += base.length === ch.length ? base : ch
  }
  return out
}

export function normalizeLabel(label: string): string {
  return stripAccents(label)
    .toLowerCase()
    .replace(/\([^)]*\)/g, ' ') // "Preço (R$)", "Part Number (MPN)"
    .replace(/[º°ª]/g, 'o')
    .replace(/\./g, ' ')
    .replace(/[:*]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
}

const termCache = new Map<string, HeaderTerm | null>()

export function headerTerm(label: string): HeaderTerm | null {
  let term = termCache.get(label)
  if (term === undefined) {
    term = TERMS.get(normalizeLabel(label)) ?? null
    // Bounded: every table cell passes through here once per line.
    if (termCache.size > 5000) termCache.clear()
    termCache.set(label, term)
  }
  return term
}

/**
 * Split a label made of several adjacent header words ("Item Código", set too close to separate)
 * into known terms, longest first. Returns word counts per term, or null if it does not decompose.
 */
export function decomposeLabel(words: string[]): Array<{ count: number; term: HeaderTerm }> | null {
  if (words.length > 8) return null
  const out: Array<{ count: number; term: HeaderTerm }> = []
  let i = 0
  while (i < words.length) {
    let found = false
    for (let n = Math.min(MAX_TERM_WORDS, words.length - i); n > 0; n--) {
      const term = headerTerm(words.slice(i, i + n).join(' '))
      if (term) {
        out.push({ count: n, term })
        i += n
        found = true
        break
      }
    }
    if (!found) return null
  }
  return out
}
