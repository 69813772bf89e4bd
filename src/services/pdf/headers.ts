/**
 * Vocabulary of item-table column headers (English, Portuguese, Spanish, Catalan, French, German),
 * each with the role of its column. Labels are compared after normalizeLabel(): lower case, no
 * accents, no dots, no possessive 's, single spaces.
 *
 * Roles: 'pn' a part-number column (rank 1 the manufacturer's, rank 2 a generic code that may be
 * anyone's); 'order' a distributor's or seller's order code (Digi-Key, Mouser, Reichelt
 * "Artikelnummer", "Bestellnummer"); 'internal' the buyer's own code; 'value' a column that holds a
 * part number only in some documents (Altium Value/Comment, Eagle Device, Name, ID), judged by its
 * cells; 'desc', 'qty', 'item', 'other' as named. Part numbers come only from 'pn' and 'value'.
 */

export type ColumnKind = 'pn' | 'order' | 'internal' | 'value' | 'desc' | 'qty' | 'item' | 'other'

/** Columns whose cells are codes of some kind: where a table's header must name at least one (or a description). */
export const CODE_KINDS: readonly ColumnKind[] = ['pn', 'value', 'order', 'internal']
export const isCodeKind = (kind: ColumnKind) => CODE_KINDS.includes(kind)

export interface HeaderTerm {
  kind: ColumnKind
  /** For 'pn': 1 = manufacturer part number, 2 = generic code (maybe the buyer's own). Lower wins. */
  rank: number
}

/** Every pairing of a word for "maker" or "seller" with a word for "code": "mfr part no", "digikey #". */
const pairs = (owners: string[], codes: string[]) => owners.flatMap((o) => codes.map((c) => `${o} ${c}`))
const CODE_WORDS = [
  'part number', 'part no', 'part nr', 'part num', 'part #', 'part', 'pn', 'p/n', '#', 'no', 'nr', 'number',
  'code', 'order code', 'order no', 'order number', 'sku', 'ref', 'reference', 'id',
]
const MAKERS = ['manufacturer', 'mfr', 'mfg', 'mfgr', 'manuf', 'maker']
const SELLERS = [
  'digikey', 'digi-key', 'digi key', 'mouser', 'farnell', 'element14', 'element 14', 'newark', 'rs', 'tme', 'reichelt',
  'conrad', 'distrelec', 'lcsc', 'arrow', 'avnet', 'jlcpcb', 'supplier', 'vendor', 'distributor', 'dist', 'seller',
]

const MANUFACTURER_PN = [
  ...pairs(MAKERS, CODE_WORDS), 'mpn',
  'part number', 'part no', 'part nr', 'part num', 'part #', 'partnumber', 'part-number', 'part n',
  'p/n', 'pn', 'p n', 'cod fabricante', 'codigo fabricante', 'codigo do fabricante', 'cod do fabricante',
  'codigo de fabricante', 'cod fab', 'pn fabricante', 'p/n fabricante', 'part number fabricante', 'part number do fabricante',
  'referencia fabricante', 'referencia do fabricante', 'referencia de fabricante', 'ref fabricante', 'ref do fabricante',
  'numero da peca', 'numero de peca', 'n da peca', 'no da peca', 'modelo', 'model', 'modelo/pn',
  'no de pieza', 'n de pieza', 'numero de pieza', 'numero de parte', 'no de parte',
  'ref fabricant', 'reference fabricant', 'reference du fabricant', 'ref du fabricant', 'ref constructeur',
  'reference constructeur', 'hersteller-teilenummer', 'hersteller teilenummer', 'herstellernummer', 'hersteller-nr',
  'hersteller nr', 'herst-nr', 'teilenummer', 'typ', 'type number',
]

/** A distributor's name alone over a column: its order codes ("Farnell / Element 14", "Mouser"). */
const DISTRIBUTORS = SELLERS.slice(0, SELLERS.indexOf('supplier'))

const ORDER_CODE = [
  ...pairs(SELLERS, CODE_WORDS), ...DISTRIBUTORS, 'order code', 'order no', 'order number', 'ordering code', 'order #',
  'bestellnummer', 'bestell-nr', 'bestellnr', 'bestell nr', 'artikelnummer', 'artikel-nr', 'artikelnr', 'art-nr',
  'art no', 'art nr', 'art #', 'ref fournisseur', 'reference fournisseur', 'code fournisseur', 'referencia proveedor',
  'cod proveedor', 'codigo proveedor', 'codigo del proveedor', 'cod fornecedor', 'codigo fornecedor',
  'codigo do fornecedor', 'lieferantennummer', 'supplier parts', 's/referencia', 's/ref', 'catalog no', 'catalogue no', 'cat no',
]

const INTERNAL_CODE = [
  'your part', 'customer part', 'our part', 'internal code', 'internal part', 'internal part number',
  'codigo interno', 'cod interno', 'n/referencia', 'n/ref', 'notre reference', 'unsere nummer',
]

const GENERIC_CODE = [
  'codigo', 'cod', 'code', 'item code', 'cod item', 'codigo item', 'codigo do item', 'cod produto',
  'codigo produto', 'codigo do produto', 'cod do produto', 'product code', 'product no', 'referencia',
  'ref', 'reference', 'sku', 'material', 'cod material', 'codigo material', 'codigo do material',
  'artigo', 'article', 'article no', 'referenz',
]

const VALUE = ['value', 'comment', 'comments', 'device', 'name', 'id', 'wert', 'valeur', 'valor nominal', 'bauteil', 'component', 'componente']

const DESCRIPTION = [
  'descricao', 'description', 'desc', 'descricao do produto', 'descricao do item', 'descricao do material',
  'descricao dos produtos', 'descricao do servico', 'descricao/especificacao', 'produto', 'product',
  'item description', 'product description', 'especificacao', 'discriminacao', 'discriminacao do produto',
  'denominacao', 'designation', 'details', 'descripcion', 'descripcio', 'beschreibung', 'bezeichnung',
  'artikelbezeichnung', 'libelle', 'info', 'omschrijving', 'описание', 'наименование', 'название',
  'съставен елемент', 'составной элемент', 'елемент', 'элемент',
]

const QUANTITY = [
  'qtd', 'qtde', 'qt', 'quant', 'quantidade', 'qty', 'quantity', 'qnt', 'qtd pedida', 'quantidade pedida',
  'ordered qty', 'order qty', 'qty ordered', 'qtd solicitada', 'menge', 'anzahl', 'stuck', 'stk', 'cantidad',
  'cant', 'quantite', 'qte', 'aantal', 'req', 'pcs', 'количество', 'кол-во', 'брой',
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
  'designator', 'designators', 'reference designator', 'refdes', 'ref des', 'schematic', 'symbol', 'footprint',
  'package', 'pattern', 'libref', 'library', 'case', 'gehause', 'boitier', 'encapsulado', 'hersteller',
  'fabricant', 'supplier', 'vendor', 'distributor', 'provider', 'fournisseur', 'proveedor', 'proveidor',
  'lieferant', 'fornecedor', 'link', 'url', 'preis', 'prix', 'precio', 'vat', '+vat', 'mwst', 'tva', 'iva',
  'ordered', 'mul', 'multiple', 'kommentar', 'забележка', 'примечание', 'бележка', 'commentaire', 'bemerkung', 'remarque', 'alternative', 'datasheet',
]

const TERMS = new Map<string, HeaderTerm>()
for (const [list, term] of [
  [OTHER, { kind: 'other', rank: 0 }],
  [ITEM, { kind: 'item', rank: 0 }],
  [QUANTITY, { kind: 'qty', rank: 0 }],
  [DESCRIPTION, { kind: 'desc', rank: 0 }],
  [VALUE, { kind: 'value', rank: 0 }],
  [GENERIC_CODE, { kind: 'pn', rank: 2 }],
  [INTERNAL_CODE, { kind: 'internal', rank: 0 }],
  [ORDER_CODE, { kind: 'order', rank: 0 }],
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
    .replace(/['’]s\b/g, '') // "Manufacturer's Part No."
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
