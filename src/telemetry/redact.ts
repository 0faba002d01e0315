/**
 * A last fence for text the proxy did not write itself (upstream error messages): any upstream key
 * secret the configuration holds, and anything shaped like a proxy client key, is replaced before the
 * text reaches a log line or an audit row. Log objects are otherwise built from names and numbers only.
 */
import type { ConfigSnapshot } from '../core/config.js'

const CLIENT_KEY = /sk-proxy-[A-Za-z0-9]{8,}/g
const MAX_REMEMBERED = 1000
const REDACTED = '[redacted]'

export class SecretScrubber {
  readonly #config: () => ConfigSnapshot
  /** secrets of this and earlier snapshots: a request in flight may still use a key rotated away since */
  readonly #secrets = new Set<string>()
  #seen: ConfigSnapshot | null = null

  constructor(config: () => ConfigSnapshot) {
    this.#config = config
  }

  scrub(text: string): string
  scrub(text: string | null): string | null
  scrub(text: string | null): string | null {
    if (!text) return text
    this.#refresh()
    let out = text
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED)
    return out.includes('sk-proxy-') ? out.replace(CLIENT_KEY, REDACTED) : out
  }

  #refresh(): void {
    const snapshot = this.#config()
    if (snapshot === this.#seen) return
    this.#seen = snapshot
    for (const provider of snapshot.providers.values()) {
      for (const key of provider.keys) {
        // Very short secrets would redact ordinary words; real keys are long.
        if (key.secret.length < 8 || this.#secrets.has(key.secret)) continue
        if (this.#secrets.size >= MAX_REMEMBERED) this.#secrets.delete(this.#secrets.values().next().value!)
        this.#secrets.add(key.secret)
        // Log lines are scrubbed after serialization, where a secret with quotes or backslashes is escaped.
        const escaped = JSON.stringify(key.secret).slice(1, -1)
        if (escaped !== key.secret) this.#secrets.add(escaped)
      }
    }
  }
}
