export type BusMessageHandler = (channel: string, message: string) => void

/**
 * Publish/subscribe transport between the AI server and the gateway (and between gateway instances).
 * Redis in production; an in-process bus when the gateway runs alone without Redis.
 */
export interface MessageBus {
  readonly mode: 'redis' | 'memory'
  publish(channel: string, message: string): Promise<void>
  /** Receive every message on the channels matching `pattern` (a prefix followed by `*`). Resolves once subscribed. */
  listen(pattern: string, handler: BusMessageHandler): Promise<void>
  /** True while messages can flow; false during an outage of the transport. */
  isConnected(): boolean
  /** Whether the transport answers now (a Redis that keeps its connections but stopped answering does not). */
  responds(): Promise<boolean>
  /** Called with false when the transport goes down and true when it is back (and resubscribed). */
  onConnectionChange(listener: (connected: boolean) => void): void
  close(): Promise<void>
}
