/**
 * Budget alerts: when a budget's spend crosses 80% and then 100% in its period, one log event each, and
 * (with `--alert-webhook`) one JSON POST each, sent in the background with retries and backoff, never on
 * a request's path. The proxy_budget_used_ratio gauge follows every settlement.
 *
 * "Once" is per period: each instance remembers what it reported, and with `claim` (the limits' shared
 * state: Redis when instances share one) only the first instance to claim a crossing reports it. The spend
 * figures are this instance's view (its own settlements plus the store's totals, re-read every few seconds).
 */
import type { BudgetRule } from '../limits/budgets.js'
import { describeBudget, formatUsd } from '../limits/budgets.js'
import type { BudgetGauge } from './metrics.js'

export const ALERT_THRESHOLDS = [0.8, 1] as const

export interface BudgetAlertEvent {
  event: 'budget_threshold'
  level: BudgetRule['level']
  name: string | null
  period: BudgetRule['period']
  period_key: string
  threshold: number
  limit_usd: number
  spent_usd: number
  ratio: number
  resets_at: string
  message: string
}

export interface AlertLogger {
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface BudgetAlertsOptions {
  logger: AlertLogger
  metrics?: BudgetGauge
  webhook?: string | null
  /** delays between webhook attempts (default 1 s, 2 s, 4 s, 8 s: five attempts in all) */
  retryDelaysMs?: readonly number[]
  /** how long one POST may take (default 5 s) */
  timeoutMs?: number
  fetch?: typeof fetch
  /** true for the first caller of an id across instances (the limits' shared state); absent: this instance decides alone */
  claim?: (id: string, ttlMs: number) => Promise<boolean>
}

export class BudgetAlerts {
  readonly #opts: BudgetAlertsOptions
  /** `<budget key>|<threshold>` already reported; the key names the period, so a new period starts afresh */
  readonly #fired = new Set<string>()
  readonly #sending = new Set<Promise<void>>()

  constructor(opts: BudgetAlertsOptions) {
    this.#opts = opts
  }

  observe(rule: BudgetRule, spent: number): void {
    const ratio = rule.limit > 0 ? spent / rule.limit : 0
    this.#opts.metrics?.used(rule.level, rule.name ?? 'global', rule.period, Math.round(ratio * 10_000) / 10_000)
    for (const threshold of ALERT_THRESHOLDS) {
      if (ratio < threshold) continue
      const id = `${rule.key}|${threshold}`
      if (this.#fired.has(id)) continue
      this.#fired.add(id)
      if (this.#fired.size > 10_000) this.#fired.clear()
      const claim = this.#opts.claim
      if (!claim) {
        this.#report(rule, spent, ratio, threshold)
        continue
      }
      // the shared claim is a round trip: made off the request path, and reported only when won
      const claiming: Promise<void> = claim(id, Math.max(60_000, rule.endsAt - Date.now() + 3_600_000))
        .catch(() => true)
        .then((won) => {
          if (won) this.#report(rule, spent, ratio, threshold)
        })
        .finally(() => this.#sending.delete(claiming))
      this.#sending.add(claiming)
    }
  }

  /** Waits for webhook deliveries in flight (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.#sending.size > 0) await Promise.allSettled([...this.#sending])
  }

  #report(rule: BudgetRule, spent: number, ratio: number, threshold: number): void {
    const message = `${threshold >= 1 ? 'Spent' : 'Reached 80% of'} ${describeBudget(rule)}: $${formatUsd(spent)} of $${formatUsd(rule.limit)} in ${rule.periodKey} (UTC).`
    const event: BudgetAlertEvent = {
      event: 'budget_threshold',
      level: rule.level,
      name: rule.name,
      period: rule.period,
      period_key: rule.periodKey,
      threshold,
      limit_usd: rule.limit / 1_000_000,
      spent_usd: spent / 1_000_000,
      ratio: Math.round(ratio * 10_000) / 10_000,
      resets_at: new Date(rule.endsAt).toISOString(),
      message,
    }
    this.#opts.logger.warn({ ...event }, message)
    const url = this.#opts.webhook
    if (!url) return
    const sending: Promise<void> = this.#deliver(url, event).finally(() => this.#sending.delete(sending))
    this.#sending.add(sending)
  }

  async #deliver(url: string, event: BudgetAlertEvent): Promise<void> {
    const delays = this.#opts.retryDelaysMs ?? [1000, 2000, 4000, 8000]
    const post = this.#opts.fetch ?? fetch
    const body = JSON.stringify(event)
    let lastError = ''
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, delays[attempt - 1]).unref())
      try {
        const res = await post(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000) })
        await res.body?.cancel().catch(() => undefined)
        if (res.ok) return
        lastError = `HTTP ${res.status}`
        // a 4xx other than 408/429 will not get better by retrying
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err)
      }
    }
    this.#opts.logger.error({ event: 'budget_alert_webhook', threshold: event.threshold, level: event.level, name: event.name, err: lastError }, 'could not deliver a budget alert to the webhook')
  }
}
