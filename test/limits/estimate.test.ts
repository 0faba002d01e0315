import { describe, expect, it } from 'vitest'
import { estimateChatTokens, estimateCompletionTokens, estimateEmbeddingTokens, Tokenizer } from '../../src/limits/estimate.js'
import { compileRateSpec, formatCount, parseLimitFlag, parseRate } from '../../src/core/windows.js'
import { QuotaBook, periodsAt, type QuotaUsageRow } from '../../src/limits/quotas.js'

describe('token estimates', () => {
  it('counts message text with the tokenizer, plus framing and max_tokens per choice', async () => {
    const tokenizer = new Tokenizer()
    await tokenizer.load()
    expect(tokenizer.ready).toBe(true)
    const count = tokenizer.counter()
    expect(count('Hello world')).toBe(2)
    const req = { model: 'm', messages: [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: [{ type: 'text', text: 'Hello world' }] }] }
    const base = estimateChatTokens(req, count)
    expect(count('Be brief.')).toBe(3)
    expect(base).toBe(3 + (3 + 3) + (3 + 2))
    expect(estimateChatTokens({ ...req, max_tokens: 100, n: 2 }, count)).toBe(base + 200)
    expect(estimateChatTokens({ ...req, max_completion_tokens: 50, max_tokens: 100 }, count)).toBe(base + 50)
    // special-token text is counted as text, never refused
    expect(count('<|endoftext|>')).toBeGreaterThan(1)
  })

  it('counts legacy prompts (16 completion tokens by default) and embedding inputs, token arrays as they are', () => {
    const count = (t: string) => t.length
    expect(estimateCompletionTokens({ model: 'm', prompt: 'abcd' }, count)).toBe(4 + 16)
    expect(estimateCompletionTokens({ model: 'm', prompt: [1, 2, 3], max_tokens: 5 }, count)).toBe(3 + 5)
    expect(estimateEmbeddingTokens({ model: 'm', input: ['ab', 'cde'] }, count)).toBe(5)
    expect(estimateEmbeddingTokens({ model: 'm', input: [[1, 2], [3]] }, count)).toBe(3)
  })

  it('caps exact counting per request and extrapolates the rest', async () => {
    const tokenizer = new Tokenizer()
    await tokenizer.load()
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(5000) // 225k characters
    const exact = tokenizer.counter(Infinity)(text)
    const started = performance.now()
    const capped = tokenizer.counter(10_000)(text)
    expect(performance.now() - started).toBeLessThan(exact > 0 ? 200 : 0)
    expect(Math.abs(capped - exact) / exact).toBeLessThan(0.02)
  })

  it('uses about four characters a token until the tokenizer has loaded', () => {
    expect(new Tokenizer().counter()('x'.repeat(400))).toBe(100)
  })
})

describe('window specs', () => {
  it('parses N/WINDOW from one second to one day', () => {
    expect(parseRate('100/10s')).toEqual({ limit: 100, windowMs: 10_000 })
    expect(parseRate('60/m')).toEqual({ limit: 60, windowMs: 60_000 })
    expect(parseRate('2000000/1h')).toEqual({ limit: 2_000_000, windowMs: 3_600_000 })
    expect(parseRate('5/1d')).toEqual({ limit: 5, windowMs: 86_400_000 })
    expect(parseRate('2M/1h')).toEqual({ limit: 2_000_000, windowMs: 3_600_000 })
    expect(parseRate('1.5k/1m')).toEqual({ limit: 1500, windowMs: 60_000 })
    for (const bad of ['100', '0/1s', '1/0s', '10/2d', '10/500ms', 'x/1s', '1.5/1s']) expect(parseRate(bad)).toBeNull()
    expect(parseLimitFlag('requests=10/1s')).toEqual({ kind: 'requests', limit: 10, windowMs: 1000 })
    expect(parseLimitFlag('tokens=1/1h')).toEqual({ kind: 'tokens', limit: 1, windowMs: 3_600_000 })
    expect(parseLimitFlag('bytes=1/1h')).toBeNull()
  })

  it('compiles rpm/tpm and windows into one list, keeping the lowest limit per window', () => {
    expect(compileRateSpec({ rpm: 60, tpm: 1000, requests: ['30/1m', '5/1s'], tokens: '10/1h' })).toEqual([
      { kind: 'requests', limit: 30, windowMs: 60_000 },
      { kind: 'tokens', limit: 1000, windowMs: 60_000 },
      { kind: 'requests', limit: 5, windowMs: 1000 },
      { kind: 'tokens', limit: 10, windowMs: 3_600_000 },
    ])
    expect(formatCount(12_345)).toBe('12.3k')
    expect(formatCount(100_000)).toBe('100k')
    expect(formatCount(2_500_000)).toBe('2.5M')
  })
})

describe('quota book', () => {
  it('names UTC periods', () => {
    expect(periodsAt(Date.UTC(2030, 11, 31, 23, 59, 59))).toMatchObject({ day: '2030-12-31', month: '2030-12', dayEndsAt: Date.UTC(2031, 0, 1), monthEndsAt: Date.UTC(2031, 0, 1) })
  })

  it('keeps usage that could not be written and writes it with the next batch', async () => {
    const now = Date.UTC(2030, 0, 1)
    const written: QuotaUsageRow[] = []
    let fail = true
    const errors: unknown[] = []
    const book = new QuotaBook({
      clock: () => now,
      flushMs: 0,
      onError: (e) => errors.push(e),
      store: {
        add: async (rows) => {
          if (fail) throw new Error('SQLITE_BUSY')
          written.push(...rows)
        },
        load: async () => written,
      },
    })
    book.record(1, '2030-01-01', '2030-01', 10)
    await book.flush()
    expect(errors).toHaveLength(1)
    expect(book.used(1, 'day', '2030-01-01')).toBe(10)
    book.record(1, '2030-01-01', '2030-01', 5)
    fail = false
    await book.close()
    expect(written.filter((r) => r.period === 'day')).toEqual([{ clientId: 1, period: 'day', periodKey: '2030-01-01', tokens: 15 }])
  })
})
