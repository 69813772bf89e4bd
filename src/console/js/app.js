// The console's page logic: sign in, classify, upload a purchase order, follow the job live,
// review results, browse the history. The API calls are in api.js and the stream in job-stream.js;
// this file only wires them to the page.
import { ApiError, auth, classifications, documents, history, jobs, ncm } from './api.js'
import { followJob } from './job-stream.js'
import { el, fillBatchRow, formatDate, formatNcm, confidenceBar, JOB_LABEL, resultCard, unmatchedAnswerList } from './render.js'

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

/**
 * @type {{ jobId: string, kind: string, follow: { close(): void }, rows: Map<string, HTMLTableRowElement>,
 *   barFinished: number, quietSince?: number, quietTold: boolean, timedOut: boolean, ended: boolean } | undefined}
 */
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

/** A batch's bar: items answered of all items, and never backwards (events may come out of step). */
function setBatchBar(finished, total) {
  if (!current || total <= 0) return
  current.barFinished = Math.max(current.barFinished, Math.min(finished, total))
  setProgress(current.barFinished, total)
}

/** "40 s", "12 min", "2 h 05 min". */
function formatQuiet(seconds) {
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`
}

/**
 * How long the followed job has had no word from the AI server (its agents may work for many
 * minutes in silence): shown once the stream says so (`waiting`), or once it has been a minute by
 * the job's last activity; hidden by any news. Also fills the timed-out notice's duration.
 */
function renderQuiet() {
  const line = $('#quiet')
  if (!current || current.ended || current.quietSince === undefined) {
    line.hidden = true
    return
  }
  const seconds = Math.max(0, Math.floor((Date.now() - current.quietSince) / 1000))
  const text = formatQuiet(seconds)
  line.textContent = `Aguardando o servidor de IA há ${text}`
  line.dataset.quietSeconds = String(seconds)
  // A timed-out job's notice says it itself.
  line.hidden = current.timedOut || !(current.quietTold || seconds >= 60)
  for (const span of document.querySelectorAll('#job-result [data-quiet]')) span.textContent = text
}
// One clock for the page: the text moves on between the server's `waiting` events.
setInterval(renderQuiet, 5_000)

/** Quiet since `since` (epoch ms; ignored if not a time); `told`: the server said so. */
function setQuiet(since, told) {
  if (!current || Number.isNaN(since)) return
  current.quietSince = since
  current.quietTold = told
  renderQuiet()
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

/**
 * Failed by the gateway's deadline: the AI server may still answer (the stream stays open for it),
 * so this says so, with how long it has been quiet, and still offers a retry.
 */
function showTimedOut(job) {
  const retry = el('button', {
    type: 'button', class: 'button small', onclick: async () => {
      try { openJob(await jobs.retry(job.id)) } catch (err) { retry.replaceWith(el('span', { class: 'error-text' }, err.message)) }
    },
  }, 'Tentar de novo')
  $('#job-result').replaceChildren(el('div', { class: 'timed-out', role: 'status', dataset: { testid: 'job-timed-out' } },
    el('strong', {}, 'Tempo esgotado: '), 'nenhuma resposta do servidor de IA há ', el('span', { dataset: { quiet: '' } }, '…'),
    '; ainda aguardando uma resposta tardia.', ' ', retry))
  renderQuiet()
}

/**
 * The picker's search: descriptions by GET /ncm?q=, or, for a code (8542.31.90, 854231), that entry
 * by GET /ncm/:code, followed by the items under it when it is a heading. The search reads
 * descriptions only, and many items are named by their place under a heading ("Outros", "Não
 * montados"): a broker reaches them through the heading (a click on it) or by its code.
 */
async function searchNcm(q) {
  if (!/^\d{2,4}(\.?\d{1,2}){0,2}$/.test(q)) return ncm.search(q)
  try {
    const entry = await ncm.lookup(q)
    return { items: [entry, ...entry.items.map((item) => ({ ...item, is_item: true }))] }
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { items: [] }
    throw err
  }
}

function reviewCard(result) {
  return resultCard(result, {
    onReview: (status) => classifications.review(result.id, status),
    onCorrect: (code) => classifications.correct(result.id, code),
    searchNcm,
  })
}

const reviewRow = (id, status) => classifications.review(id, status)

/** A batch's answers that no item took (kept by the gateway), under its items. */
function showUnmatched(answers) {
  const box = $('#unmatched')
  box.hidden = !answers?.length
  if (answers?.length) box.replaceChildren(el('h3', {}, `Respostas que nenhum item recebeu (${answers.length})`), unmatchedAnswerList(answers))
}

/** Batch rows, in the order of the items; keyed by part number. */
function drawBatchRows(items) {
  const body = $('#batch-table tbody')
  current.rows = new Map()
  body.replaceChildren(...items.map((item, index) => {
    const row = el('tr')
    fillBatchRow(row, item, index, { onReview: reviewRow })
    current.rows.set(item.partnumber.toUpperCase(), row)
    return row
  }))
}

function setCounts(counts) {
  if (!counts) return
  const finished = counts.done + counts.failed
  // A batch's bar follows its finished items.
  setBatchBar(finished, counts.total)
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
  current = { jobId: job.id, kind: job.kind, rows: new Map(), follow: { close() {} }, barFinished: 0, quietTold: false, timedOut: false, ended: false }
  renderQuiet()
  showUnmatched(job.unmatched_answers)
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
      if (batch) showUnmatched(snapshot.unmatched_answers)
      if (snapshot.status === 'QUEUED' || snapshot.status === 'RUNNING') {
        // Live (again, after a retry elsewhere): no timed-out notice from before.
        if (current.timedOut) $('#job-result').replaceChildren()
        current.timedOut = false
        setQuiet(Date.parse(snapshot.last_activity_at), false)
      }
    },
    onProgress(p) {
      logEvent('progress', `${p.current}/${p.total} ${p.message ?? ''}`)
      setQuiet(Date.now(), false)
      if (batch) {
        setBatchBar(p.current, p.total)
        $('#progress-message').textContent = p.message ?? ''
      } else setProgress(p.current, p.total, p.message)
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
      fillBatchRow(row, item, [...current.rows.keys()].indexOf(key), { onReview: reviewRow })
      row.classList.add('just-updated')
      setCounts(countsFromRows())
      // An item failed by the deadline is not news from the AI server.
      if (!current.timedOut) setQuiet(Date.now(), false)
    },
    // Not in the event log: one every heartbeat for as long as the AI server is quiet.
    onWaiting(w) {
      setQuiet(Date.parse(w.last_activity_at), true)
    },
    onDone(data) {
      logEvent('done', batch ? 'lote concluído' : `NCM ${formatNcm(data.result)}`)
      current.ended = true
      renderQuiet()
      setProgress(1, 1, batch ? 'Lote concluído.' : 'Classificação concluída.')
      if (batch) {
        setCounts(data.counts ?? countsFromRows())
        if (current.timedOut) $('#job-result').replaceChildren()
        // Answers no item took are kept by the gateway; the finished job lists them.
        jobs.get(job.id).then((finished) => { if (current === mine) showUnmatched(finished.unmatched_answers) }, () => {})
      } else if (data.result) $('#job-result').replaceChildren(reviewCard(data.result))
    },
    onFailed(data) {
      logEvent('failed', data.error ?? '')
      if (data.timed_out) {
        // The stream stays open: a late answer may still come.
        current.timedOut = true
        $('#progress-message').textContent = 'Tempo esgotado; aguardando uma resposta tardia.'
        showTimedOut(job)
        setQuiet(Date.parse(data.last_activity_at ?? ''), current.quietTold)
        return
      }
      current.ended = true
      renderQuiet()
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
