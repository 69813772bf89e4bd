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

export const STATUS_LABEL = { ACTIVE: 'Aceita', REJECTED: 'Rejeitada', REPLACED: 'Substituída' }
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
 * A classification as a card. `onReview(status)` is called by the accept / reject buttons and
 * resolves with the updated classification, which replaces the card's content.
 */
export function resultCard(result, { onReview } = {}) {
  const card = el('article', { class: 'result-card', dataset: { testid: 'result-card', classificationId: result.id ?? '' } })
  const draw = (r) => {
    const manufacturer = r.manufacturer ?? {}
    const status = r.status ? el('span', { class: `status status-${r.status.toLowerCase()}`, dataset: { testid: 'result-status' } }, STATUS_LABEL[r.status] ?? r.status) : null
    const actions = onReview && r.id ? el('div', { class: 'card-actions' },
      el('button', { type: 'button', class: 'button small', disabled: r.status === 'ACTIVE', dataset: { testid: 'accept' }, onclick: () => review('ACTIVE') }, 'Aceitar'),
      el('button', { type: 'button', class: 'button small danger', disabled: r.status === 'REJECTED', dataset: { testid: 'reject' }, onclick: () => review('REJECTED') }, 'Rejeitar'))
      : null
    card.replaceChildren(
      el('header', { class: 'card-head' },
        el('span', { class: 'card-partnumber' }, r.partnumber ?? ''),
        status),
      el('div', { class: 'ncm-line' },
        el('span', { class: 'ncm-label' }, 'NCM'),
        el('span', { class: 'ncm', dataset: { testid: 'ncm' } }, formatNcm(r)),
        el('span', { class: 'ex' }, r.ex ? `Ex ${r.ex}` : 'sem Ex'),
        r.nve ? el('span', { class: 'ex' }, `NVE ${r.nve}`) : null),
      el('p', { class: 'description', dataset: { testid: 'description' } }, r.description ?? 'Sem descrição'),
      el('dl', { class: 'facts' },
        el('dt', {}, 'Fabricante'), el('dd', { dataset: { testid: 'manufacturer' } }, manufacturer.name ?? '—'),
        el('dt', {}, 'País'), el('dd', { dataset: { testid: 'country' } }, manufacturer.country ?? '—'),
        manufacturer.address ? [el('dt', {}, 'Endereço'), el('dd', { class: 'muted' }, manufacturer.address)] : null,
        el('dt', {}, 'Confiança'), el('dd', {}, confidenceBar(r.confidence))),
      actions,
      el('p', { class: 'card-error', role: 'alert', hidden: true }))
  }
  const review = async (status) => {
    for (const button of card.querySelectorAll('button')) button.disabled = true
    try {
      result = { ...result, ...(await onReview(status)) }
      draw(result)
    } catch (err) {
      draw(result)
      const message = card.querySelector('.card-error')
      message.textContent = err.message
      message.hidden = false
    }
  }
  draw(result)
  return card
}

/** A batch row, rendered from an item {partnumber, status, result, error}. */
export function fillBatchRow(row, item, index) {
  const r = item.result
  row.dataset.status = item.status
  row.replaceChildren(
    el('td', { class: 'num' }, String(index + 1)),
    el('td', { class: 'mono' }, item.partnumber),
    el('td', {}, el('span', { class: `status status-item-${item.status.toLowerCase()}` }, ITEM_LABEL[item.status] ?? item.status)),
    el('td', { class: 'mono', dataset: { testid: 'row-ncm' } }, r ? formatNcm(r) : ''),
    el('td', {}, r?.ex ?? ''),
    el('td', { class: 'wrap' }, item.status === 'FAILED' ? el('span', { class: 'error-text' }, item.error ?? 'Não classificado') : (r?.description ?? '')),
    el('td', {}, r?.manufacturer?.name ?? ''),
    el('td', {}, r?.manufacturer?.country ?? ''),
    el('td', {}, r ? confidenceBar(r.confidence) : ''))
}
