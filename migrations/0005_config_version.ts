import { sql, type Kysely } from 'kysely'
import { CONFIG_CHANNEL, CONFIG_VERSION_BUMP as bump, countConfigChanges, isPostgres } from '../src/store/dialect.js'

/**
 * A counter of configuration changes, kept by triggers. A running server polls `PRAGMA data_version`,
 * which changes on every commit of another connection; since the audit trail is written by a
 * connection of the server's own (its writer thread), that is several times a second under load, and
 * each would reload the whole configuration. The server now reloads only when this counter moved.
 *
 * What counts: every change to providers, clients, routes, route targets, policies and operator circuit
 * overrides, and to keys except the health the server itself writes behind (health, cooldown, failures,
 * last use). `proxy keys enable` bumps health_epoch, `proxy circuit reset` writes an override, so those
 * still reach a running server. Frozen in time: Kysely<any>, never the app's schema types.
 */
export const CONFIG_TABLES = ['providers', 'clients', 'routes', 'route_targets', 'policies', 'circuit_overrides'] as const
/** provider_keys columns whose change is configuration; the rest are the server's own health bookkeeping */
export const KEY_CONFIG_COLUMNS = ['provider_id', 'label', 'secret', 'priority', 'weight', 'state', 'created_at', 'rotated_at', 'health_epoch'] as const

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE config_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`.execute(db)
  await sql`INSERT INTO config_version (id, version) VALUES (1, 0)`.execute(db)
  if (isPostgres(db)) return upPostgres(db)
  for (const table of CONFIG_TABLES) await countConfigChanges(db, table)
  await sql.raw(`CREATE TRIGGER config_version_provider_keys_insert AFTER INSERT ON provider_keys BEGIN ${bump}; END`).execute(db)
  await sql.raw(`CREATE TRIGGER config_version_provider_keys_delete AFTER DELETE ON provider_keys BEGIN ${bump}; END`).execute(db)
  await sql.raw(`CREATE TRIGGER config_version_provider_keys_update AFTER UPDATE OF ${KEY_CONFIG_COLUMNS.join(', ')} ON provider_keys BEGIN ${bump}; END`).execute(db)
}

/**
 * PostgreSQL: the same counter, bumped once per statement, and announced with NOTIFY in the same
 * transaction, so every server LISTENing reloads as soon as the change commits (and never before).
 */
async function upPostgres(db: Kysely<any>): Promise<void> {
  await sql
    .raw(
      `CREATE FUNCTION config_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE v integer;
       BEGIN
         ${bump} RETURNING version INTO v;
         PERFORM pg_notify('${CONFIG_CHANNEL}', v::text);
         RETURN NULL;
       END $$`,
    )
    .execute(db)
  for (const table of CONFIG_TABLES) await countConfigChanges(db, table)
  await sql
    .raw(`CREATE TRIGGER config_version_provider_keys AFTER INSERT OR DELETE OR UPDATE OF ${KEY_CONFIG_COLUMNS.join(', ')} ON provider_keys FOR EACH STATEMENT EXECUTE FUNCTION config_version_bump()`)
    .execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) {
    await sql`DROP TABLE config_version`.execute(db)
    await sql`DROP FUNCTION config_version_bump() CASCADE`.execute(db)
    return
  }
  for (const table of CONFIG_TABLES) {
    for (const event of ['insert', 'update', 'delete']) await sql.raw(`DROP TRIGGER IF EXISTS config_version_${table}_${event}`).execute(db)
  }
  for (const event of ['insert', 'update', 'delete']) await sql.raw(`DROP TRIGGER IF EXISTS config_version_provider_keys_${event}`).execute(db)
  await sql`DROP TABLE config_version`.execute(db)
}
