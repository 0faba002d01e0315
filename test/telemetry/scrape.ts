/** Scrapes /metrics and reads samples out of the parsed exposition. */
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format'

export interface Scrape {
  text: string
  families: Map<string, ParsedFamily>
  /** the value of the one sample with exactly these labels (0 when absent) */
  value(name: string, labels?: Record<string, string>): number
  /** the sum over every sample whose labels include these */
  sum(name: string, labels?: Record<string, string>): number
  /** histogram: the summed `_count` over series whose labels include these */
  count(name: string, labels?: Record<string, string>): number
  samples(name: string): ParsedSample[]
}

export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers })
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`)
  return parseScrape(await res.text())
}

/**
 * parse-prometheus-text-format folds histograms into one unlabeled sample (it was written for
 * prom2json's unlabeled case), so labeled histograms are read a second time as untyped families:
 * `name_count{...}` then parses as its own family with its labels.
 */
export function parseScrape(text: string): Scrape {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]))
  const counts = new Map<string, ParsedSample[]>()
  for (const f of parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'))) {
    if (f.name.endsWith('_count')) counts.set(f.name, [...(counts.get(f.name) ?? []), ...f.metrics])
  }
  const samples = (name: string) => families.get(name)?.metrics ?? []
  const includes = (s: ParsedSample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => (s.labels ?? {})[k] === v)
  const exact = (s: ParsedSample, labels: Record<string, string>) => includes(s, labels) && Object.keys(s.labels ?? {}).length === Object.keys(labels).length
  return {
    text,
    families,
    samples,
    value: (name, labels = {}) => Number(samples(name).find((s) => exact(s, labels))?.value ?? 0),
    sum: (name, labels = {}) => samples(name).filter((s) => includes(s, labels)).reduce((n, s) => n + Number(s.value ?? 0), 0),
    count: (name, labels = {}) => (counts.get(`${name}_count`) ?? []).filter((s) => includes(s, labels)).reduce((n, s) => n + Number(s.value ?? 0), 0),
  }
}
