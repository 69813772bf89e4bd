/**
 * Whether PostgreSQL was last found reachable. Whoever finds it unreachable says so; the pool's next
 * successful connection ends the outage and tells the listeners (reconnect metrics, logs).
 */
export class DatabaseAvailability {
  private down = false
  private readonly listeners: Array<(available: boolean) => void> = []

  get available(): boolean {
    return !this.down
  }

  markUnavailable(): void {
    if (this.down) return
    this.down = true
    for (const listener of this.listeners) listener(false)
  }

  markAvailable(): void {
    if (!this.down) return
    this.down = false
    for (const listener of this.listeners) listener(true)
  }

  /** Called with false when an outage begins and true when it ends. */
  onChange(listener: (available: boolean) => void): void {
    this.listeners.push(listener)
  }
}
