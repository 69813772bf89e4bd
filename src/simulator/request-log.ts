export interface ReceivedRequest {
  endpoint: string
  body: unknown
  receivedAt: string
}

/** The last `limit` start requests, oldest first, so tests can assert whether the AI server was called. */
export class RequestLog {
  readonly #entries: ReceivedRequest[] = []

  constructor(private readonly limit: number) {}

  record(endpoint: string, body: unknown): void {
    this.#entries.push({ endpoint, body, receivedAt: new Date().toISOString() })
    if (this.#entries.length > this.limit) this.#entries.splice(0, this.#entries.length - this.limit)
  }

  list(): ReceivedRequest[] {
    return [...this.#entries]
  }

  clear(): void {
    this.#entries.length = 0
  }
}
