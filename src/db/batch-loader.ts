/**
 * Reads rows by key, many at once: every key asked for in the same turn of the event loop goes to
 * the database in one query (the same key asked twice, once). Under load, a burst of N requests
 * costs one round trip instead of N, and takes one pool connection instead of N; alone, a read
 * waits for nothing but the end of the current turn. With `gatherMs`, keys asked for within that
 * long of the first one share its query (for reads nobody waits on, such as the listener's).
 */
export class BatchLoader<K, V> {
  private pending = new Map<K, Array<{ resolve: (value: V | undefined) => void; reject: (err: unknown) => void }>>()
  private scheduled = false

  private readonly maxBatch: number
  private readonly gatherMs: number

  /** `loadMany` answers the keys it found; a key it leaves out is undefined to its callers. */
  constructor(private readonly loadMany: (keys: K[]) => Promise<Map<K, V>>, options: { maxBatch?: number; gatherMs?: number } = {}) {
    this.maxBatch = options.maxBatch ?? 500
    this.gatherMs = options.gatherMs ?? 0
  }

  load(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.pending.get(key)
      if (waiting) waiting.push({ resolve, reject })
      else this.pending.set(key, [{ resolve, reject }])
      if (!this.scheduled) {
        this.scheduled = true
        if (this.gatherMs > 0) setTimeout(() => this.flush(), this.gatherMs)
        else setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    const all = [...this.pending]
    this.pending = new Map()
    for (let i = 0; i < all.length; i += this.maxBatch) {
      const batch = all.slice(i, i + this.maxBatch)
      this.loadMany(batch.map(([key]) => key)).then(
        (found) => { for (const [key, waiting] of batch) for (const w of waiting) w.resolve(found.get(key)) },
        (err: unknown) => { for (const [, waiting] of batch) for (const w of waiting) w.reject(err) },
      )
    }
  }
}
