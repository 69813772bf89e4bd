import { Readable } from 'node:stream'
import { request } from 'undici'

// multipart/form-data bodies byte by byte, to send uploads that no browser or FormData would make.

export interface RawPart {
  /** Header lines of the part, without line endings. */
  headers: string[]
  body: string | Buffer
}

/** The file part of an upload form, as browsers send it. */
export const filePart = (content: string | Buffer, field = 'file', filename = 'pedido.pdf'): RawPart => ({
  headers: [`Content-Disposition: form-data; name="${field}"; filename="${filename}"`, 'Content-Type: application/pdf'],
  body: content,
})

/** A plain text field. */
export const fieldPart = (name: string, value: string): RawPart => ({ headers: [`Content-Disposition: form-data; name="${name}"`], body: value })

/** The body of a form: each part after its delimiter, then the close delimiter unless `close` is false. */
export function multipartBody(boundary: string, parts: RawPart[], { close = true } = {}): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1'), Buffer.from(part.body), Buffer.from('\r\n'))
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

export interface RawUpload {
  token: string
  contentType?: string
  /** The whole body, or its pieces as they are to be sent (chunked, unless contentLength is set). */
  body: Buffer | AsyncIterable<Buffer>
  /** Sent as Content-Length. */
  contentLength?: number
  /** Longest wait for the answer (default 60 s). */
  timeoutMs?: number
}

/** POST /documents with exactly these bytes; the status, headers and JSON body of the answer. */
export async function rawUpload(url: string, upload: RawUpload): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${upload.token}` }
  if (upload.contentType !== undefined) headers['content-type'] = upload.contentType
  if (upload.contentLength !== undefined) headers['content-length'] = String(upload.contentLength)
  const body = Buffer.isBuffer(upload.body) ? upload.body : Readable.from(upload.body)
  const response = await request(`${url}/documents`, { method: 'POST', headers, body, headersTimeout: upload.timeoutMs ?? 60_000, bodyTimeout: upload.timeoutMs ?? 60_000 })
  const text = await response.body.text()
  let json: unknown = text
  try { json = JSON.parse(text) } catch { /* not JSON: the assertions show it */ }
  return { status: response.statusCode, headers: response.headers, body: json }
}
