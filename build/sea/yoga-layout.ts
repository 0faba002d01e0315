/**
 * yoga-layout (Ink's layout engine) as the executable's bundle sees it. The package's entry awaits its
 * WebAssembly at the top level, which a CommonJS bundle cannot; here the same engine is loaded by
 * `initYoga()`, which the entry awaits before a command that draws with Ink (build/sea/entry.ts).
 */
import { loadYoga } from 'yoga-layout/load'

export * from 'yoga-layout/load'

let Yoga: Awaited<ReturnType<typeof loadYoga>> | undefined
export { Yoga as default }

export async function initYoga(): Promise<void> {
  Yoga ??= await loadYoga()
}
