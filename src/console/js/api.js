// The Nexa API from a browser page, over fetch. Reusable as is by a front end on the same origin
// (or on a subdomain of the same site), and a starting point for one elsewhere (see README,
// "Browser console": CORS and the job-scoped stream token).
//
// Authentication: POST /auth/login sets two httpOnly cookies, `nexa_session` (the access token,
// 15 minutes) and `nexa_refresh` (sent only to /auth/*). The page never sees or stores a token:
// the browser sends the cookie with every same-origin request, EventSource included. When the
// access cookie has expired, one POST /auth/refresh (cookie only, no body) renews both, and the
// request is tried again once.
//
// Errors: every API error is JSON {statusCode, error, code, message}; it is thrown as ApiError.

export class ApiError extends Error {
  /** @param {number} status @param {{code?: string, message?: string}|null} body */
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.code = body?.code ?? 'http_error'
    this.body = body
  }
}

/**
 * One API call. `body` is sent as JSON; `form` (a FormData) as multipart/form-data.
 * Resolves with the parsed JSON answer (null for 204).
 */
export async function api(path, { method = 'GET', body, form, retried = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  } else if (form) {
    init.body = form // the browser writes the multipart boundary itself
  }
  const response = await fetch(path, init)
  if (response.status === 401 && !retried && !path.startsWith('/auth/')) {
    // The access cookie expired: renew the session once, then try again.
    if (await refreshSession()) return api(path, { method, body, form, retried: true })
  }
  const text = await response.text()
  let data = null
  if (text) {
    try { data = JSON.parse(text) } catch { data = { message: text } }
  }
  if (!response.ok) throw new ApiError(response.status, data)
  return data
}

/** Renews the session from the refresh cookie. No body and no content-type: the cookie is the input. */
export async function refreshSession() {
  const response = await fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' })
  return response.ok
}

export const auth = {
  login: (email, password) => api('/auth/login', { method: 'POST', body: { email, password } }),
  /** The signed-in user, or null; renews an expired session on the way. */
  async me() {
    try {
      return await api('/auth/me')
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && (await refreshSession())) return api('/auth/me')
      if (err instanceof ApiError && err.status === 401) return null
      throw err
    }
  },
  logout: () => fetch('/auth/logout', { method: 'POST', credentials: 'same-origin' }),
}

export const jobs = {
  /** 202: the job (QUEUED, RUNNING, or already DONE when answered from history). */
  classify: (input) => api('/classifications', { method: 'POST', body: input }),
  get: (id) => api(`/jobs/${encodeURIComponent(id)}`),
  list: (params = {}) => api(`/jobs?${new URLSearchParams(params)}`),
  retry: (id) => api(`/jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' }),
  csvUrl: (id) => `/jobs/${encodeURIComponent(id)}/results.csv`,
}

export const documents = {
  /** 201: {document_id, filename, pages, part_numbers, total, job?}; with classify, `job` is the batch. */
  upload(file, { classify = true } = {}) {
    const form = new FormData()
    form.append('file', file, file.name)
    return api(`/documents${classify ? '?classify=true' : ''}`, { method: 'POST', form })
  },
}

export const history = {
  search: (q, limit = 50) => api(`/partnumbers?${new URLSearchParams({ q, limit: String(limit) })}`),
  partnumber: (code) => api(`/partnumbers/${encodeURIComponent(code)}`),
}

export const classifications = {
  /** status: 'ACTIVE' (accept) or 'REJECTED'. */
  review: (id, status) => api(`/classifications/${encodeURIComponent(id)}`, { method: 'PATCH', body: { status } }),
  /** A code corrected by hand: only to one VALID in the official NCM table (else 422 ncm_not_valid). */
  correct: (id, ncm) => api(`/classifications/${encodeURIComponent(id)}`, { method: 'PATCH', body: { ncm } }),
}

export const ncm = {
  /** The official NCM table: {items: [{code, description, ...}], next_cursor}. */
  search: (q, limit = 20) => api(`/ncm?${new URLSearchParams({ q, limit: String(limit) })}`),
  /** One entry by its code (with or without dots), with its path: {code, description, is_item, in_force, path, ...}. */
  lookup: (code) => api(`/ncm/${encodeURIComponent(code)}`),
}
