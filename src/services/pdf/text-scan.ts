import { isPartNumber, tokenize, type TokenContext } from './classify-token.js'
import { dropContained, splitAttributes, wholeCellCode } from './code-shape.js'
import { stripAccents } from './headers.js'

/**
 * Labels that announce a part number. Short forms (PN, P/N, MPN) may be followed directly by the
 * code; the token after any of them still has to pass the 'labelled' check, which keeps
 * "PN junction" or a header row "P/N  Description" from producing anything.
 */
const PREFIX =
  /(?<![\w/])(?:m?p\/n|m?pn|p\.n\.|mfr\.?\s*p\/?n|mfg\.?\s*p\/?n|part\s*(?:number|no\.?|nr\.?|n[o°º]\.?|#)|manufacturer\s+part(?:\s+(?:number|no\.?))?|cod(?:igo|\.)?\s*(?:do\s+)?fabricante|ref(?:erencia|\.)?\s*(?:do\s+)?fabricante|numero\s+da\s+peca)(?![\w/])\s*[:#.\-]?\s*/gi

/**
 * Labels whose value is never a part number: order, invoice and tax numbers, lots, contacts.
 * The token right after such a label is masked out of description scanning.
 */
const NOT_A_PART =
  /(?<![\w/])(?:pedido(?:\s+de\s+compra)?|ordem\s+de\s+compra|purchase\s+order|order|p\.?o\.?|oc|invoice|inv|nota\s+fiscal|nf-?e|nfs-?e|nf|fatura|cotacao|quotation|quote|rfq|requisicao|romaneio|lote|lot|batch|date\s+code|d\/c|serie|serial|s\/n|protocolo|chave\s+de\s+acesso|boleto|contrato|contract|ncm(?:\/sh)?|cnpj|cpf|cep|tel|fone|telefone|phone|fax|cel|celular|whatsapp|ie|inscricao\s+estadual|cfop|cst|ref\.?\s+pedido)(?![\w/])\.?\s*(?:n[o°º]\.?|num\.?|numero|number|nr\.?|#)?\s*[:#]?\s*/gi

/** Part numbers that follow a PN-style prefix anywhere in the text, in order. */
export function prefixedCodes(text: string): string[] {
  const folded = stripAccents(text)
  const out: string[] = []
  for (const m of folded.matchAll(PREFIX)) {
    const after = m.index + m[0].length
    const next = tokenize(text.slice(after))[0]
    // Only the token right after the label, not one further along the line.
    if (next && next.start <= 2 && isPartNumber(next.token, 'labelled')) out.push(next.token)
  }
  return out
}

/** Codes in a description that look like manufacturer part numbers, skipping labelled non-parts. */
export function descriptionCodes(text: string): string[] {
  const folded = stripAccents(text)
  const masked = new Set<number>()
  for (const m of folded.matchAll(NOT_A_PART)) masked.add(m.index + m[0].length)
  for (const m of folded.matchAll(PREFIX)) masked.add(m.index + m[0].length) // handled by prefixedCodes
  // "[FURN_7777] Office Chair": ERP exports put the seller's own product code in brackets up front.
  const bracketed = /^\s*\[([^\]\s]+)\]/.exec(text)
  if (bracketed) masked.add(text.indexOf(bracketed[1]!))
  return dropContained(
    tokenize(text)
      .filter((t) => !masked.has(t.start))
      .flatMap((t) => splitAttributes(t.token))
      .filter((token) => isPartNumber(token, 'free')),
  )
}

/**
 * Codes in a part-number column cell, lenient ('labelled') under a part-number header, strict
 * ('free') in a column judged by its cells. Under a header, a cell that is one code is kept whole.
 */
export function cellCodes(text: string, context: TokenContext = 'labelled'): string[] {
  const whole = context === 'labelled' ? wholeCellCode(text) : null
  if (whole) return [whole]
  return dropContained(
    tokenize(text)
      .flatMap((t) => splitAttributes(t.token))
      .filter((token) => isPartNumber(token, context)),
  )
}
