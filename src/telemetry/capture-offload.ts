/**
 * Captured bodies larger than the inline cap leave their audit rows for the capture store (S3 or
 * compatible) when the audit writer makes a batch, never on the request path. A batch's uploads run a
 * few at a time and its rows wait for them a few seconds at most. When the store fails, the bodies are
 * dropped (counted, warned about once a minute) and their rows kept, marked; after a failure the store
 * is left alone for a while, so an outage costs neither requests nor audit rows, only those bodies.
 */
import { setMaxListeners } from 'node:events'
import type { Env } from '../store/paths.js'
import { captureObjectKey, objectStoreSettings, openObjectStore, type ObjectStore } from '../store/object-store.js'
import { auditValueIndex, type NewAuditRow } from '../store/repos/audit.js'
import type { Logger } from './logger.js'
import type { ProxyMetrics } from './metrics.js'
import { onceAMinute } from './once-a-minute.js'

export const DEFAULT_CAPTURE_INLINE_MAX = 16 * 1024

/** Why a body was dropped: the store answered with an error, did not answer in time, had just failed, or too many waited. */
export type CaptureDropReason = 'error' | 'timeout' | 'unavailable' | 'queue_full'
const REASONS: readonly CaptureDropReason[] = ['error', 'timeout', 'unavailable', 'queue_full']

export interface CaptureOffloadOptions {
  objects: ObjectStore
  /** bodies of more UTF-8 bytes than this go to the store */
  inlineMax?: number
  logger: Logger
  metrics?: ProxyMetrics
  /** uploads at once; default 16 */
  concurrency?: number
  /** bodies one batch may send; more are dropped (queue_full); default 512 */
  maxPending?: number
  /** how long one upload may take; default 5 s */
  timeoutMs?: number
  /** how long a batch's rows wait for all its uploads; default 20 s */
  deadlineMs?: number
  /** after a failure, how long bodies are dropped without trying (unavailable); default 10 s */
  pauseMs?: number
}

/** A body on its way to the store, and the row (as auditRowValues) to mark if it does not get there. */
export interface CaptureUpload {
  which: 'request' | 'response'
  key: string
  body: string
  values: unknown[]
}

type Moved = Omit<CaptureUpload, 'values'>

const BODY_KEY = { request: auditValueIndex('request_body_key'), response: auditValueIndex('response_body_key') }
const DROPPED = auditValueIndex('capture_dropped')

export class CaptureOffload {
  readonly #objects: ObjectStore
  readonly #inlineMax: number
  readonly #opts: Required<Pick<CaptureOffloadOptions, 'concurrency' | 'maxPending' | 'timeoutMs' | 'deadlineMs' | 'pauseMs'>> & CaptureOffloadOptions
  readonly #warn = onceAMinute()
  #pausedUntil = 0
  /** bodies taken for the batch being made */
  #taken = 0
  #dropped = 0

  constructor(opts: CaptureOffloadOptions) {
    this.#opts = { concurrency: 16, maxPending: 512, timeoutMs: 5000, deadlineMs: 20_000, pauseMs: 10_000, ...opts }
    this.#objects = opts.objects
    this.#inlineMax = opts.inlineMax ?? DEFAULT_CAPTURE_INLINE_MAX
    // every reason present from the start, so a rate() over it works before the first drop
    for (const reason of REASONS) opts.metrics?.captureDropped(reason, 0)
  }

  get location(): string {
    return this.#objects.location
  }

  /** bodies dropped since start */
  get dropped(): number {
    return this.#dropped
  }

  /** Starts a batch: the per-batch bound counts from here. */
  begin(): void {
    this.#taken = 0
  }

  /**
   * Moves the row's bodies over the inline cap out of it: the row gets their keys and sizes, and the
   * bodies are returned to be uploaded (see store). Bodies that cannot go now are dropped and marked
   * at once. Undefined when the row keeps its bodies inline (the common case: no allocation).
   */
  take(row: NewAuditRow): Moved[] | undefined {
    let moved: Moved[] | undefined
    for (const which of ['request', 'response'] as const) {
      const body = row[`${which}_body`]
      if (body === null || body.length * 3 <= this.#inlineMax) continue
      const bytes = Buffer.byteLength(body, 'utf8')
      if (bytes <= this.#inlineMax) continue
      row[`${which}_body`] = null
      row[`${which}_body_bytes`] = bytes
      const reason = Date.now() < this.#pausedUntil ? 'unavailable' : this.#taken >= this.#opts.maxPending ? 'queue_full' : null
      if (reason) {
        row.capture_dropped = reason
        this.#count(reason, null)
        continue
      }
      this.#taken++
      const key = captureObjectKey(this.#objects.prefix, row.ts, row.request_id, which)
      row[`${which}_body_key`] = key
      ;(moved ??= []).push({ which, key, body })
    }
    return moved
  }

  /**
   * Uploads a batch's bodies, a few at a time, each within its timeout and all within the batch's
   * deadline. Never rejects: a body that did not get there is dropped and its row marked (no key, the
   * reason), and once one upload failed the batch's remaining bodies are not tried.
   */
  async store(uploads: CaptureUpload[]): Promise<void> {
    if (uploads.length === 0) return
    const deadline = new AbortController()
    // every upload (and each of its attempts) listens on this one signal, which lives as long as the batch
    setMaxListeners(0, deadline.signal)
    const timer = setTimeout(() => deadline.abort(), this.#opts.deadlineMs)
    let next = 0
    let failure: unknown = null
    const work = async () => {
      while (next < uploads.length) {
        const upload = uploads[next++]!
        const { body } = upload
        upload.body = '' // the text is not needed once sent (or dropped)
        if (failure !== null) {
          this.#drop(upload, 'unavailable', null)
          continue
        }
        const timeout = AbortSignal.timeout(this.#opts.timeoutMs)
        try {
          await this.#objects.put(upload.key, body, AbortSignal.any([deadline.signal, timeout]))
        } catch (err) {
          failure ??= err
          this.#pausedUntil = Date.now() + this.#opts.pauseMs
          this.#drop(upload, deadline.signal.aborted || timeout.aborted ? 'timeout' : 'error', err)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.min(this.#opts.concurrency, uploads.length) }, work))
    } finally {
      clearTimeout(timer)
    }
  }

  #drop(upload: CaptureUpload, reason: CaptureDropReason, err: unknown): void {
    upload.values[BODY_KEY[upload.which]] = null
    upload.values[DROPPED] = reason
    this.#count(reason, err)
  }

  #count(reason: CaptureDropReason, err: unknown): void {
    this.#dropped++
    this.#opts.metrics?.captureDropped(reason, 1)
    if (!this.#warn()) return
    this.#opts.logger.warn(
      { event: 'capture', reason, location: this.#objects.location, ...(err ? { err: err instanceof Error ? err.message : String(err) } : {}), dropped_total: this.#dropped },
      'captured bodies dropped: the capture store is not taking them; audit rows are kept without those bodies (see proxy_capture_dropped_total)',
    )
  }
}

/**
 * The server's capture store and offloader when --capture-store (PROXY_CAPTURE_STORE) names one, else
 * null (and the AWS SDK is not loaded). The bucket is checked in the background: a store that is down
 * when the server starts costs bodies, never the start.
 */
export async function openCaptureOffload(
  settings: { captureStore: string | null; captureInlineMax: number },
  env: Env,
  logger: Logger,
  metrics?: ProxyMetrics,
): Promise<{ objects: ObjectStore; offload: CaptureOffload } | null> {
  if (!settings.captureStore) return null
  const objects = await openObjectStore(objectStoreSettings(settings.captureStore, env))
  objects.check().then(
    () => logger.info({ event: 'capture', location: objects.location, inlineMax: settings.captureInlineMax }, 'capture store reachable: larger captured bodies go there'),
    (err: unknown) => logger.warn({ event: 'capture', location: objects.location, err: err instanceof Error ? err.message : String(err) }, 'capture store not reachable; larger captured bodies are dropped until it is'),
  )
  return { objects, offload: new CaptureOffload({ objects, inlineMax: settings.captureInlineMax, logger, metrics }) }
}
