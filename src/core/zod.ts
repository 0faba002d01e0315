/**
 * The parts of zod the proxy uses, imported as `* as z` from here. `import { z } from 'zod'` is the
 * whole library as one object, every locale included, which a bundler must keep whole: 570 KB that
 * `proxy serve` parsed at every start (build/bundle.ts). Named exports let it keep these: about 150 KB.
 */
export { array, boolean, discriminatedUnion, enum, literal, looseObject, number, record, strictObject, string, toJSONSchema, union, unknown, ZodError, ZodType } from 'zod'
export type { core, infer, output } from 'zod'
