import { openStore } from './src/store/db.js'
import { sql } from 'kysely'
const s = await openStore({ dataDir: '/tmp/pgtry', databaseUrl: process.argv[2], env: { PROXY_MASTER_KEY: 'x'.repeat(0) || undefined } as any, keychain: null })
console.log(s.kind, s.location)
const r = await sql`select table_name, column_name, data_type from information_schema.columns where table_schema='public' and table_name in ('audit','usage','providers') order by 1`.execute(s.db)
console.log(r.rows.slice(0, 8))
await s.close()
