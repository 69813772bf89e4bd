import type { AiMessage } from '../ai/messages.js'

export type ChannelListener = (message: AiMessage) => void

/**
 * Routes each message from the process's single subscription to the streams watching that
 * channel. A channel costs a map entry while someone watches it, and nothing after.
 */
export class ProgressHub {
  private readonly listeners = new Map<string, Set<ChannelListener>>()
  private listenerCount = 0

  subscribe(channel: string, listener: ChannelListener): () => void {
    let set = this.listeners.get(channel)
    if (!set) {
      set = new Set()
      this.listeners.set(channel, set)
    }
    set.add(listener)
    this.listenerCount++
    let active = true
    return () => {
      if (!active) return
      active = false
      this.listenerCount--
      set.delete(listener)
      if (set.size === 0) this.listeners.delete(channel)
    }
  }

  dispatch(channel: string, message: AiMessage): void {
    const set = this.listeners.get(channel)
    if (!set) return
    // The usual case, one stream on the channel: no copy of the set for every message.
    if (set.size === 1) return set.values().next().value!(message)
    // A copy: a listener may unsubscribe itself (or another) while the message goes round.
    for (const listener of [...set]) listener(message)
  }

  counts(): { channels: number; listeners: number } {
    return { channels: this.listeners.size, listeners: this.listenerCount }
  }
}
