/**
 * Teams (migration 0010): groups of clients that share rate limits, token quotas and money budgets on
 * top of each client's own. Running servers apply a change within about a second.
 */
import type { Kysely } from 'kysely'
import { conflict, notFound } from '../../core/errors.js'
import { clientWindows, formatRate } from '../../core/windows.js'
import { nowIso } from '../time.js'
import type { Database, TeamTable } from '../schema.js'
import type { Selectable } from 'kysely'
import { limitColumns, type ClientLimitsPatch } from './clients.js'
import { assertName } from './providers.js'

export interface TeamSummary {
  id: number
  name: string
  rpm: number | null
  tpm: number | null
  dailyTokens: number | null
  monthlyTokens: number | null
  limits: string[]
  /** names of the team's clients */
  clients: string[]
  createdAt: string
}

type TeamRow = Selectable<TeamTable>

export async function addTeam(db: Kysely<Database>, name: string, patch: ClientLimitsPatch = {}): Promise<TeamSummary> {
  assertName('Team', name)
  if (await db.selectFrom('teams').select('id').where('name', '=', name).executeTakeFirst()) throw conflict(`A team named '${name}' already exists. Change it with 'proxy teams set ${name}'.`)
  const row = await db
    .insertInto('teams')
    .values({ name, rpm: null, tpm: null, daily_tokens: null, monthly_tokens: null, ...limitColumns(null, patch), created_at: nowIso() })
    .returningAll()
    .executeTakeFirstOrThrow()
  return summarize(row, [])
}

export async function getTeam(db: Kysely<Database>, name: string): Promise<TeamRow> {
  const row = await db.selectFrom('teams').selectAll().where('name', '=', name).executeTakeFirst()
  if (!row) throw notFound(`No team named '${name}'. List them with 'proxy teams ls', add one with 'proxy teams add ${name}'.`)
  return row
}

export async function setTeamLimits(db: Kysely<Database>, name: string, patch: ClientLimitsPatch): Promise<TeamSummary> {
  const row = await getTeam(db, name)
  const updated = await db.updateTable('teams').set(limitColumns(row.limits, patch)).where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
  return summarize(updated, await clientNames(db, row.id))
}

/** Removes a team: its clients leave it (keeping their own limits), its budgets go with it. */
export async function removeTeam(db: Kysely<Database>, name: string): Promise<void> {
  const row = await getTeam(db, name)
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('clients').set({ team_id: null }).where('team_id', '=', row.id).execute()
    await tx.deleteFrom('budgets').where('level', '=', 'team').where('subject_id', '=', row.id).execute()
    await tx.deleteFrom('teams').where('id', '=', row.id).execute()
  })
}

export async function listTeams(db: Kysely<Database>): Promise<TeamSummary[]> {
  const [rows, members] = await Promise.all([
    db.selectFrom('teams').selectAll().orderBy('name').execute(),
    db.selectFrom('clients').select(['name', 'team_id']).where('team_id', 'is not', null).orderBy('name').execute(),
  ])
  return rows.map((r) => summarize(r, members.filter((m) => m.team_id === r.id).map((m) => m.name)))
}

async function clientNames(db: Kysely<Database>, teamId: number): Promise<string[]> {
  const rows = await db.selectFrom('clients').select('name').where('team_id', '=', teamId).orderBy('name').execute()
  return rows.map((r) => r.name)
}

function summarize(row: TeamRow, clients: string[]): TeamSummary {
  return {
    id: row.id,
    name: row.name,
    rpm: row.rpm,
    tpm: row.tpm,
    dailyTokens: row.daily_tokens,
    monthlyTokens: row.monthly_tokens,
    limits: clientWindows(null, null, row.limits).map((w) => `${w.kind}=${formatRate(w)}`),
    clients,
    createdAt: row.created_at,
  }
}
