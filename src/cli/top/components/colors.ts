/** The few colours the dashboard uses, by meaning. */
export function statusColor(status: number, error: string | null): string | undefined {
  if (status >= 500) return 'red'
  if (status >= 400 && status !== 499) return 'yellow'
  return error ? 'red' : undefined
}

export function circuitColor(state: 'closed' | 'open' | 'half_open'): string | undefined {
  return state === 'open' ? 'red' : state === 'half_open' ? 'yellow' : 'green'
}

export function healthColor(health: 'ok' | 'cooling' | 'invalid', disabled = false): string | undefined {
  if (disabled) return 'gray'
  return health === 'invalid' ? 'red' : health === 'cooling' ? 'yellow' : 'green'
}

export function errorRateColor(rate: number): string | undefined {
  return rate >= 0.05 ? 'red' : rate > 0 ? 'yellow' : undefined
}
