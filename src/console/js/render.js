// DOM building for the console: a result card, a batch table row, history rows. Text always goes
// in through textContent (never innerHTML), so nothing the API returns can inject markup.

/** el('div', {class: 'x', dataset: {id: 1}}, child, 'text') */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') node.className = value
    else if (key === 'dataset') Object.assign(node.dataset, value)
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else if (key in node && typeof value !== 'string') node[key] = value
    else node.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

export const STATUS_LABEL = { ACTIVE: 'Aceita', PENDING: 'Precisa de revisão', REJECTED: 'Rejeitada', REPLACED: 'Substituída' }
export const ITEM_LABEL = { PENDING: 'Na fila', DONE: 'Classificado', FAILED: 'Falhou' }
export const JOB_LABEL = { QUEUED: 'Na fila', RUNNING: 'Em andamento', DONE: 'Concluído', FAILED: 'Falhou' }

const dateTime = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeStyle: 'short' })
export const formatDate = (iso) => (iso ? dateTime.format(new Date(iso)) : '')

/** "8541.21.20" from the API, or dots added to a bare 8-digit code. */
export function formatNcm(result) {
  if (result?.ncm_formatted) return result.ncm_formatted
  const ncm = result?.ncm ?? ''
  return /^\d{8}$/.test(ncm) ? `${ncm.slice(0, 4)}.${ncm.slice(4, 6)}.${ncm.slice(6)}` : ncm
}

/** A confidence bar: 0..1 as a filled bar and a percentage, coloured by level. */
export function confidenceBar(confidence) {
  if (confidence === null || confidence === undefined) return el('span', { class: 'muted' }, '—')
  const percent = Math.round(confidence * 100)
  const level = percent >= 85 ? 'high' : percent >= 65 ? 'medium' : 'low'
  const fill = el('span', { class: 'confidence-fill' })
  fill.style.width = `${percent}%`
  return el('span', { class: `confidence confidence-${level}`, role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(percent), 'aria-label': 'Confiança' },
    el('span', { class: 'confidence-track' }, fill),
    el('span', { class: 'confidence-value' }, `${percent}%`))
}

/**
 * Why a result waits for review (status PENDING): each reason the API gives, and the part number
 * the AI server's answer named when it is not the one asked for. Null for any other result.
 */
export function reviewNotice(r) {
  if (r?.status !== 'PENDING') return null
  const reasons = (r.review_reasons ?? []).map((reason) => el('li', { dataset: { code: reason.code } }, reason.message))
  if (r.answered_partnumber) reasons.push(el('li', {}, 'A resposta do servidor de IA se refere a ', el('span', { class: 'mono', dataset: { testid: 'answered-partnumber' } }, r.answered_partnumber)))
  return el('div', { class: 'review', dataset: { testid: 'needs-review' } },
    el('strong', {}, 'Precisa de revisão: '), 'aceite ou rejeite este resultado.',
    reasons.length ? el('ul', { class: 'review-reasons' }, reasons) : null)
}

export const NCM_CHECK_LABEL = { VALID: 'NCM válida', UNKNOWN: 'NCM desconhecida', EXPIRED: 'NCM fora de vigência', NOT_LEAF: 'NCM não é item' }

const ipiFormat = new Intl.NumberFormat('pt-BR', { maximumFractionDigits: 2 })

/** The code's check against the official NCM table, as a small badge (cards and batch rows). */
export function ncmCheckBadge(check) {
  if (!check) return null
  const noTable = check.table_version === null
  return el('span', {
    class: `ncm-check ncm-check-${check.status.toLowerCase().replace('_', '-')}`,
    title: noTable ? 'Tabela NCM oficial não carregada' : `Tabela NCM ${check.table_version}`,
    dataset: { testid: 'ncm-check', status: check.status },
  }, noTable ? 'NCM não verificada' : NCM_CHECK_LABEL[check.status] ?? check.status)
}

/** A code of the official table as Siscomex writes it: 85, 85.42, 8542.3, 8542.31, 8542.31.9, 8542.31.90. */
export function formatNcmCode(code) {
  if (!/^\d{2,8}$/.test(code ?? '')) return code ?? ''
  if (code.length <= 2) return code
  if (code.length <= 4) return `${code.slice(0, 2)}.${code.slice(2)}`
  if (code.length <= 6) return `${code.slice(0, 4)}.${code.slice(4)}`
  return `${code.slice(0, 4)}.${code.slice(4, 6)}.${code.slice(6)}`
}

/** The official path, chapter to item, and the IPI rate when known. */
export function ncmOfficial(check) {
  if (!check || (!check.path?.length && check.ipi === null)) return null
  return el('div', { class: 'ncm-official', dataset: { testid: 'ncm-official' } },
    check.path?.length
      ? el('ol', { class: 'ncm-path', dataset: { testid: 'ncm-path' } }, check.path.map((step) =>
        el('li', {}, el('span', { class: 'mono' }, formatNcmCode(step.code)), ' ', step.description)))
      : null,
    check.ipi !== null && check.ipi !== undefined
      ? el('p', { class: 'ncm-ipi', dataset: { testid: 'ipi' } }, 'IPI: ', `${ipiFormat.format(check.ipi)}%`)
      : null)
}

/**
 * "Corrigir NCM": a search over the official table (`search(q)` → {items}) whose entries are picked
 * to correct the code (`correct(code)` resolves when the gateway has taken it).
 */
function correctionPicker(search, correct) {
  const list = el('ul', { class: 'ncm-picker-results', role: 'listbox', dataset: { testid: 'ncm-picker-results' } })
  const note = el('p', { class: 'muted small', role: 'status' })
  let timer
  let asked = 0
  const run = async (q) => {
    const mine = ++asked
    if (q.trim().length < 2) { list.replaceChildren(); note.textContent = ''; return }
    note.textContent = 'Procurando…'
    try {
      const { items } = await search(q.trim())
      if (mine !== asked) return
      note.textContent = items.length ? '' : 'Nada encontrado na tabela NCM oficial'
      // Only an item in force can be the corrected code (the gateway refuses anything else); a
      // chapter, heading or subheading opens the items under it (many read only "Outros").
      list.replaceChildren(...items.map((item) => el('li', {},
        item.is_item && item.in_force
          ? el('button', { type: 'button', class: 'ncm-pick', role: 'option', dataset: { testid: 'ncm-pick', code: item.code }, onclick: () => correct(item.code) },
            el('span', { class: 'mono' }, formatNcmCode(item.code)), ' ', item.description ?? '')
          : el('button', {
            type: 'button', class: 'ncm-pick ncm-pick-heading', title: 'Ver os itens', dataset: { testid: 'ncm-heading', code: item.code },
            disabled: item.is_item, onclick: () => { input.value = formatNcmCode(item.code); run(input.value) },
          }, el('span', { class: 'mono' }, formatNcmCode(item.code)), ' ', item.description ?? '', item.in_force ? '' : ' (fora de vigência)'))))
    } catch (err) {
      if (mine === asked) note.textContent = err.message
    }
  }
  const input = el('input', {
    type: 'search', class: 'ncm-picker-input', placeholder: 'Código ou descrição (tabela NCM oficial)', 'aria-label': 'Procurar NCM',
    dataset: { testid: 'ncm-picker-input' }, oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => run(e.target.value), 250) },
  })
  return el('div', { class: 'ncm-picker', dataset: { testid: 'ncm-picker' } }, input, note, list)
}

/** Accept / reject buttons; `review(status)` does the rest. */
function reviewButtons(r, review) {
  return el('div', { class: 'card-actions' },
    el('button', { type: 'button', class: 'button small', disabled: r.status === 'ACTIVE', dataset: { testid: 'accept' }, onclick: () => review('ACTIVE') }, 'Aceitar'),
    el('button', { type: 'button', class: 'button small danger', disabled: r.status === 'REJECTED', dataset: { testid: 'reject' }, onclick: () => review('REJECTED') }, 'Rejeitar'))
}

/**
 * A classification as a card. `onReview(status)` is called by the accept / reject buttons and
 * resolves with the updated classification, which replaces the card's content.
 */
export function resultCard(result, { onReview, onCorrect, searchNcm } = {}) {
  const card = el('article', { class: 'result-card', dataset: { testid: 'result-card', classificationId: result.id ?? '' } })
  let picking = false
  const draw = (r) => {
    const manufacturer = r.manufacturer ?? {}
    const status = r.status ? el('span', { class: `status status-${r.status.toLowerCase()}`, dataset: { testid: 'result-status' } }, STATUS_LABEL[r.status] ?? r.status) : null
    const canCorrect = onCorrect && searchNcm && r.id
    const actions = onReview && r.id ? reviewButtons(r, review) : null
    if (actions && canCorrect) {
      actions.append(el('button', {
        type: 'button', class: 'button small secondary', 'aria-expanded': picking ? 'true' : 'false', dataset: { testid: 'correct-ncm' },
        onclick: () => { picking = !picking; draw(result) },
      }, picking ? 'Fechar' : 'Corrigir NCM'))
    }
    const corrected = r.correction
      ? el('p', { class: 'muted small', dataset: { testid: 'ncm-corrected' } }, `Corrigida de ${formatNcm({ ncm: r.correction.previous_ncm })} em ${formatDate(r.correction.corrected_at)}`)
      : null
    // Parts a result lacks are null: left out (the DOM's replaceChildren would write them as "null").
    card.replaceChildren(...[
      el('header', { class: 'card-head' },
        el('span', { class: 'card-partnumber' }, r.partnumber ?? ''),
        status),
      el('div', { class: 'ncm-line' },
        el('span', { class: 'ncm-label' }, 'NCM'),
        el('span', { class: 'ncm', dataset: { testid: 'ncm' } }, formatNcm(r)),
        el('span', { class: 'ex' }, r.ex ? `Ex ${r.ex}` : 'sem Ex'),
        r.nve ? el('span', { class: 'ex' }, `NVE ${r.nve}`) : null,
        ncmCheckBadge(r.ncm_check)),
      corrected,
      ncmOfficial(r.ncm_check),
      reviewNotice(r),
      el('p', { class: 'description', dataset: { testid: 'description' } }, r.description ?? 'Sem descrição'),
      el('dl', { class: 'facts' },
        el('dt', {}, 'Fabricante'), el('dd', { dataset: { testid: 'manufacturer' } }, manufacturer.name ?? '—'),
        el('dt', {}, 'País'), el('dd', { dataset: { testid: 'country' } }, manufacturer.country ?? '—'),
        manufacturer.address ? [el('dt', {}, 'Endereço'), el('dd', { class: 'muted' }, manufacturer.address)] : null,
        el('dt', {}, 'Confiança'), el('dd', {}, confidenceBar(r.confidence))),
      actions,
      picking && canCorrect ? correctionPicker(searchNcm, correct) : null,
      el('p', { class: 'card-error', role: 'alert', hidden: true }),
    ].filter(Boolean))
  }
  // A decision sent to the API: the card shows what it answered, or why it refused.
  const decide = async (send, then) => {
    for (const button of card.querySelectorAll('button')) button.disabled = true
    try {
      result = { ...result, ...(await send()) }
      then?.()
      draw(result)
    } catch (err) {
      draw(result)
      const message = card.querySelector('.card-error')
      message.textContent = err.message
      message.hidden = false
    }
  }
  const correct = (code) => decide(() => onCorrect(code), () => { picking = false })
  const review = (status) => decide(() => onReview(status))
  draw(result)
  return card
}

/**
 * A batch row, rendered from an item {partnumber, status, result, error}. A result waiting for
 * review says why, with accept / reject buttons when `onReview(classificationId, status)` is given
 * (it resolves with the updated classification, which the row then shows).
 */
export function fillBatchRow(row, item, index, { onReview } = {}) {
  const r = item.result
  row.dataset.status = item.status
  const review = async (status) => {
    for (const button of row.querySelectorAll('button')) button.disabled = true
    try {
      fillBatchRow(row, { ...item, result: { ...r, ...(await onReview(r.id, status)) } }, index, { onReview })
    } catch (err) {
      fillBatchRow(row, item, index, { onReview })
      row.querySelector('.wrap')?.append(el('p', { class: 'card-error', role: 'alert' }, err.message))
    }
  }
  const needsReview = r?.status === 'PENDING'
  const description = item.status === 'FAILED'
    ? el('span', { class: 'error-text' }, item.error ?? 'Não classificado')
    : [r?.description ?? '', reviewNotice(r), needsReview && onReview && r.id ? reviewButtons(r, review) : null]
  row.replaceChildren(
    el('td', { class: 'num' }, String(index + 1)),
    el('td', { class: 'mono' }, item.partnumber),
    el('td', {}, el('span', { class: `status status-item-${item.status.toLowerCase()}` }, ITEM_LABEL[item.status] ?? item.status)),
    el('td', { class: 'mono', dataset: { testid: 'row-ncm' } }, r ? formatNcm(r) : '', r?.ncm_check && r.ncm_check.status !== 'VALID' ? [' ', ncmCheckBadge(r.ncm_check)] : null),
    el('td', {}, r?.ex ?? ''),
    el('td', { class: 'wrap' }, description),
    el('td', {}, r?.manufacturer?.name ?? ''),
    el('td', {}, r?.manufacturer?.country ?? ''),
    el('td', {}, r ? confidenceBar(r.confidence) : ''))
}

const UNMATCHED_REASON = {
  no_item: 'não corresponde a nenhum item do lote',
  item_answered: 'o item já tinha outra resposta',
}

/** The AI server's answers to a batch that no item took, kept by the gateway: one line each. */
export function unmatchedAnswerList(answers) {
  return el('ul', { class: 'unmatched-list' }, answers.map((a) => el('li', { dataset: { testid: 'unmatched-answer' } },
    el('span', { class: 'mono' }, a.partnumber ?? 'sem part number'), ' · ',
    UNMATCHED_REASON[a.reason] ?? a.reason, ': ',
    a.result ? `NCM ${formatNcm(a.result) || '—'}${a.result.description ? ` · ${a.result.description}` : ''}` : el('span', { class: 'error-text' }, a.error ?? 'falha'),
    a.message ? el('span', { class: 'muted' }, ` (${a.message})`) : null,
    ' ', el('span', { class: 'muted' }, formatDate(a.received_at)))))
}
