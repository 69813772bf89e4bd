/**
 * The uploads each user has in progress on this instance (being received, waiting for extraction
 * or being extracted), at most `perUser` each: the extraction queue is shared by everyone, and one
 * user's burst must not fill it.
 */
export class UploadSlots {
  readonly #held = new Map<string, number>()

  constructor(readonly perUser: number) {}

  /** Takes one of the user's slots: the function that gives it back, or undefined when all are taken. */
  take(userId: string): (() => void) | undefined {
    const held = this.#held.get(userId) ?? 0
    if (held >= this.perUser) return undefined
    this.#held.set(userId, held + 1)
    return () => {
      const left = this.#held.get(userId)! - 1
      if (left > 0) this.#held.set(userId, left)
      else this.#held.delete(userId)
    }
  }
}
