// The console's page logic: sign in, classify, upload a purchase order, follow the job live,
// review results, browse the history. The API calls are in api.js and the stream in job-stream.js;
// this file only wires them to the page.
import { ApiError, auth, classifications, documents, history, jobs } from './api.js'
import { followJob } from './job-stream.js'
import { el, fillBatchRow, formatDate, formatNcm, confidenceBar, JOB_LABEL, resultCard } from './render.js'

const $ = (selector) => document.querySelector(selector)

const CONNECTION_LABEL = {
  idle: '',
  connecting: 'Conectando…',
  live: 'Ao vivo',
  reconnecting: 'Reconectando…',
  finished: 'Concluído',
  closed: 'Desconectado',
}

// ---------------------------------------------------------------------------------------------
// Views

function show(view) {
  $('#loading').hidden = true
  for (const id of ['signin-view', 'classify-view', 'history-view']) $(`#${id}`).hidden = id !== view
  for (const tab of document.querySelectorAll('.tab')) {
    if (`${tab.dataset.tab}-view` === view) tab.setAttribute('aria-current', 'page')
    else tab.removeAttribute('aria-current')
  }
}

function signedIn(user) {
  $('#user-email').textContent = user.email
  $('#user').hidden = false
  $('#nav').hidden = false
  show('classify-view')
}

function signedOut() {
  current?.follow.close()
  current = undefined
  $('#job-panel').hidden = true
  $('#user').hidden = true
  $('#nav').hidden = true
  show('signin-view')
  $('#signin-form [name=email]').focus()
}

/** Shows an error under a form (or hides it when message is empty). */
function formError(form, message) {
  const box = form.querySelector('.form-error')
  box.textContent = message ?? ''
  box.hidden = !message
}

async function busy(form, work) {
  const button = form.querySelector('button[type=submit]')
  button.disabled = true
  formError(form, '')
  try {
    await work()
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && form.id !== 'signin-form') return signedOut()
    formError(form, err instanceof ApiError ? err.message : 'Sem conexão com o servidor. Tente de novo.')
  } finally {
    button.disabled = false
  }
}

// ---------------------------------------------------------------------------------------------
// The job panel: one job followed live at a time.

/** @type {{ jobId: string, kind: string, follow: { close(): void }, rows: Map<string, HTMLTableRowElement> } | undefined} */
let current

function setConnection(state, detail) {
  const badge = $('#connection')
  badge.dataset.state = state
  badge.textContent = CONNECTION_LABEL[state] ?? state
  badge.title = detail ?? ''
}

function setProgress(current, total, message) {
  const percent = total > 0 ? Math.max(0, Math.min(100, Math.round((current / total) * 100))) : 0
  const bar = $('#progress')
  bar.setAttribute('aria-valuenow', String(percent))
  bar.querySelector('.progress-fill').style.width = `${percent}%`
  if (message !== undefined) $('#progress-message').textContent = message ?? ''
}

function logEvent(type, text) {
  const list = $('#events')
  const time = new Date().toLocaleTimeString('pt-BR')
  list.append(el('li', { dataset: { type } }, el('span', { class: 'event-time' }, time), el('span', { class: 'event-type' }, type), el('span', { class: 'event-text' }, text)))
  $('#event-count').textContent = String(list.children.length)
}

function showFailure(job, reason) {
  const retry = el('button', {
    type: 'button', class: 'button small', onclick: async () => {
      try { openJob(await jobs.retry(job.id)) } catch (err) { retry.replaceWith(el('span', { class: 'error-text' }, err.message)) }
    },
  }, 'Tentar de novo')
  $('#job-result').replaceChildren(el('div', { class: 'failure', role: 'alert', dataset: { testid: 'job-failed' } },
    el('strong', {}, 'A classificação falhou. '), reason ?? 'Motivo desconhecido.', ' ', retry))
}

function reviewCard(result) {
  return resultCard(result, { onReview: (status) => classifications.review(result.id, status) })
}

/** Batch rows, in the order of the items; keyed by part number. */
function drawBatchRows(items) {
  const body = $('#batch-table tbody')
  current.rows = new Map()
  body.replaceChildren(...items.map((item, index) => {
    const row = el('tr')
    fillBatchRow(row, item, index)
    current.rows.set(item.partnumber.toUpperCase(), row)
    return row
  }))
}

function setCounts(counts) {
  if (!counts) return
  const finished = counts.done + counts.failed
  // A batch's bar follows its finished items (its progress events count chunks of work).
  if (counts.total > 0) setProgress(finished, counts.total)
  $('#batch-counts').textContent = `${finished} de ${counts.total} classificados${counts.failed ? ` · ${counts.failed} com falha` : ''}`
  $('#batch-counts').dataset.finished = String(finished)
}

function countsFromRows() {
  const statuses = [...current.rows.values()].map((row) => row.dataset.status)
  const done = statuses.filter((s) => s === 'DONE').length
  const failed = statuses.filter((s) => s === 'FAILED').length
  return { total: statuses.length, done, failed, pending: statuses.length - done - failed }
}

/**
 * Shows a job and follows it live until it ends. `preview` (a batch's part numbers, known from the
 * upload answer) fills the table before the stream's snapshot arrives.
 */
function openJob(job, { title, subtitle, preview } = {}) {
  current?.follow.close()
  const batch = job.kind === 'BATCH'
  $('#job-panel').hidden = false
  $('#job-title').textContent = title ?? (batch ? 'Lote de part numbers' : job.partnumber)
  $('#job-subtitle').textContent = subtitle ?? (job.source === 'HISTORY' ? 'Respondido pelo histórico: já havia uma classificação aceita.' : `Trabalho ${job.id}`)
  $('#job-result').replaceChildren()
  $('#events').replaceChildren()
  $('#event-count').textContent = '0'
  $('#batch').hidden = !batch
  $('#csv-link').href = jobs.csvUrl(job.id)
  setProgress(0, 1, JOB_LABEL[job.status] ?? '')
  current = { jobId: job.id, kind: job.kind, rows: new Map(), follow: { close() {} } }
  if (batch) {
    drawBatchRows(job.items ?? preview ?? [])
    setCounts(job.counts ?? countsFromRows())
  }
  const mine = current
  $('#job-panel').scrollIntoView({ behavior: 'smooth', block: 'nearest' })

  mine.follow = followJob(job.id, {
    // The cookie authenticates the stream. Before reconnecting on our own (EventSource gave up
    // after an HTTP error), ask for the job: that renews an expired session (api() refreshes on
    // 401), and tells a job that cannot be watched any more from a server that is just restarting.
    async streamUrl(attempt) {
      if (attempt > 0) {
        try {
          await jobs.get(job.id)
        } catch (err) {
          if (err instanceof ApiError && [401, 403, 404].includes(err.status)) throw Object.assign(new Error(err.message), { fatal: true })
          throw err
        }
      }
      return `/jobs/${encodeURIComponent(job.id)}/events`
    },
    onState(state, detail) {
      if (current !== mine) return
      const previous = $('#connection').dataset.state
      setConnection(state, detail)
      if (state === 'reconnecting' && previous !== 'reconnecting') logEvent('conexão', 'conexão perdida; reconectando')
      if (state === 'live' && previous === 'reconnecting') logEvent('conexão', 'reconectado')
      if (state === 'closed' && detail) {
        logEvent('conexão', `encerrada: ${detail}`)
        $('#progress-message').textContent = `Acompanhamento encerrado: ${detail}`
      }
    },
    onSnapshot(snapshot) {
      logEvent('snapshot', `${JOB_LABEL[snapshot.status] ?? snapshot.status}${snapshot.progress ? ` · ${snapshot.progress.current}/${snapshot.progress.total}` : ''}`)
      const p = snapshot.progress
      if (p && !batch) setProgress(p.current, p.total, p.message)
      else if (p) $('#progress-message').textContent = p.message ?? ''
      if (batch && snapshot.items) {
        drawBatchRows(snapshot.items)
        setCounts(snapshot.counts ?? countsFromRows())
      }
    },
    onProgress(p) {
      logEvent('progress', `${p.current}/${p.total} ${p.message ?? ''}`)
      if (batch) $('#progress-message').textContent = p.message ?? ''
      else setProgress(p.current, p.total, p.message)
    },
    onItem(item) {
      logEvent('item', `${item.partnumber}: ${item.status}`)
      const key = item.partnumber.toUpperCase()
      let row = current.rows.get(key)
      if (!row) {
        row = el('tr')
        current.rows.set(key, row)
        $('#batch-table tbody').append(row)
      }
      fillBatchRow(row, item, [...current.rows.keys()].indexOf(key))
      row.classList.add('just-updated')
      setCounts(countsFromRows())
    },
    onDone(data) {
      logEvent('done', batch ? 'lote concluído' : `NCM ${formatNcm(data.result)}`)
      setProgress(1, 1, batch ? 'Lote concluído.' : 'Classificação concluída.')
      if (batch) setCounts(data.counts ?? countsFromRows())
      else if (data.result) $('#job-result').replaceChildren(reviewCard(data.result))
    },
    onFailed(data) {
      logEvent('failed', data.error ?? '')
      $('#progress-message').textContent = 'Falhou.'
      showFailure(job, data.error)
    },
  })
}

// ---------------------------------------------------------------------------------------------
// History

let historyRequest = 0

async function loadHistory(q = '') {
  const table = $('#history-table tbody')
  const request = ++historyRequest
  const { items } = await history.search(q)
  if (request !== historyRequest) return // a newer search was made meanwhile: its answer wins
  $('#history-empty').hidden = items.length > 0
  table.replaceChildren(...items.map((item) => {
    const a = item.accepted
    return el('tr', { class: 'clickable', tabindex: '0', dataset: { partnumber: item.partnumber }, onclick: () => showPartnumber(item.partnumber), onkeydown: (e) => { if (e.key === 'Enter') showPartnumber(item.partnumber) } },
      el('td', { class: 'mono' }, item.partnumber),
      el('td', { class: 'mono' }, a ? formatNcm(a) : '—'),
      el('td', { class: 'wrap' }, a?.description ?? ''),
      el('td', {}, a?.manufacturer?.name ?? ''),
      el('td', {}, a ? confidenceBar(a.confidence) : ''),
      el('td', { class: 'num' }, String(item.classifications)),
      el('td', {}, formatDate(item.last_classified_at)))
  }))
}

async function showPartnumber(code) {
  const detail = $('#history-detail')
  const data = await history.partnumber(code)
  detail.replaceChildren(
    el('h3', {}, `${data.partnumber}: ${data.classifications.length} classificação(ões)`),
    el('div', { class: 'cards' }, data.classifications.map((c) => reviewCard(c))))
  detail.scrollIntoView({ behavior: 'smooth', block: 'nearest' })
}

async function loadJobs() {
  const { items } = await jobs.list({ limit: '15' })
  $('#job-list').replaceChildren(...items.map((job) => el('li', {},
    el('button', { type: 'button', class: 'link', onclick: () => { show('classify-view'); openJob(job) } },
      el('span', { class: 'mono job-name' }, job.kind === 'BATCH' ? (job.counts ? `Lote de ${job.counts.total} itens` : 'Lote') : job.partnumber),
      el('span', { class: `status status-job-${job.status.toLowerCase()}` }, JOB_LABEL[job.status] ?? job.status),
      el('span', { class: 'muted job-date' }, formatDate(job.created_at))))))
}

// ---------------------------------------------------------------------------------------------
// Wiring

$('#signin-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const form = event.currentTarget
  busy(form, async () => {
    const { user } = await auth.login(form.email.value.trim(), form.password.value)
    form.password.value = ''
    signedIn(user)
  })
})

$('#signout').addEventListener('click', async () => {
  await auth.logout().catch(() => {})
  signedOut()
})

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    show(`${tab.dataset.tab}-view`)
    if (tab.dataset.tab === 'history') {
      loadHistory($('#history-form').q.value).catch(() => {})
      loadJobs().catch(() => {})
    }
  })
}

$('#classify-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const form = event.currentTarget
  busy(form, async () => {
    const input = { partnumber: form.partnumber.value.trim() }
    for (const field of ['description', 'manufacturer', 'supplier']) {
      if (form[field].value.trim()) input[field] = form[field].value.trim()
    }
    if (form.reclassify.checked) input.reclassify = true
    openJob(await jobs.classify(input))
  })
})

$('#upload-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const form = event.currentTarget
  const file = form.file.files[0]
  if (!file) return formError(form, 'Escolha um arquivo PDF.')
  if (file.size > 20 * 1024 * 1024) return formError(form, 'O arquivo passa de 20 MB.')
  busy(form, async () => {
    const doc = await documents.upload(file, { classify: true })
    const found = `${doc.total} part number(s) em ${doc.pages} página(s)`
    if (!doc.job) {
      formError(form, `Nenhum part number encontrado em ${doc.filename}.`)
      return
    }
    openJob(doc.job, {
      title: doc.filename,
      subtitle: found,
      preview: doc.part_numbers.map((p) => ({ partnumber: p.partnumber, status: 'PENDING', result: null, error: null })),
    })
    form.reset()
  })
})

$('#history-form').addEventListener('submit', (event) => {
  event.preventDefault()
  loadHistory(event.currentTarget.q.value.trim()).catch((err) => {
    $('#history-empty').hidden = false
    $('#history-empty').textContent = err.message
  })
})

auth.me().then((user) => (user ? signedIn(user) : signedOut()), () => signedOut())
