/**
 * The admin API of spend control, on the repositories `proxy teams`, `proxy budgets`, `proxy prices` and
 * `proxy clients set --team/--…-budget` use: the same checks (a budget over an unpriced model is refused),
 * the same live reload. Budgets travel in USD (numbers), null to remove.
 */
import * as z from '../../core/zod.js'
import { invalidRequest } from '../../core/errors.js'
import { microsFromUsd } from '../../core/prices.js'
import type { Store } from '../../store/db.js'
import { getClient, listClients, setClientLimits, setClientModels, setClientTeam } from '../../store/repos/clients.js'
import { listBudgets, setBudgets, type BudgetPatch } from '../../store/repos/budgets.js'
import { listPrices, removePrice, setPrice } from '../../store/repos/prices.js'
import { addTeam, getTeam, listTeams, removeTeam, setTeamLimits } from '../../store/repos/teams.js'
import { list, type AdminEndpoint } from './handlers.js'

const name = z.string().min(1).max(63)
const count = z.number().int().min(1).nullish()
const usd = z.number().positive().max(1e9).nullish()
const rate = z.number().min(0).max(100_000)

const limits = { rpm: count, tpm: count, dailyTokens: count, monthlyTokens: count }
const budgets = { dailyBudgetUsd: usd, monthlyBudgetUsd: usd }

const teamBody = z.strictObject({ name, ...limits, ...budgets })
const setTeamBody = z.strictObject({ ...limits, ...budgets })
const setClientBody = z.strictObject({ team: name.nullish(), models: z.array(z.string().min(1).max(200)).max(1000).nullish(), ...limits, ...budgets })
const budgetBody = z.strictObject({ level: z.enum(['global', 'client', 'team', 'provider']), name: name.nullish(), dailyUsd: usd, monthlyUsd: usd })
const priceBody = z.strictObject({ model: z.string().min(1).max(200), provider: name.nullish(), input: rate, output: rate, cachedInput: rate.nullish(), cacheWrite: rate.nullish() })

/** Budgets in USD from a body: undefined keeps, null removes. */
function budgetPatch(daily: number | null | undefined, monthly: number | null | undefined): BudgetPatch {
  const patch: BudgetPatch = {}
  if (daily !== undefined) patch.daily = daily === null ? null : microsFromUsd(daily)
  if (monthly !== undefined) patch.monthly = monthly === null ? null : microsFromUsd(monthly)
  return patch
}

const hasAny = (patch: object) => Object.values(patch).some((v) => v !== undefined)

/** Only the limit fields a body names: absent ones stay as they are. */
function limitsOf(body: { rpm?: number | null; tpm?: number | null; dailyTokens?: number | null; monthlyTokens?: number | null }) {
  const out: { rpm?: number | null; tpm?: number | null; dailyTokens?: number | null; monthlyTokens?: number | null } = {}
  for (const k of ['rpm', 'tpm', 'dailyTokens', 'monthlyTokens'] as const) if (body[k] !== undefined) out[k] = body[k]
  return out
}

export function spendEndpoints(store: Store): AdminEndpoint[] {
  const { db } = store
  return [
    { method: 'GET', path: '/teams', run: async () => list(await listTeams(db)) },
    {
      method: 'POST',
      path: '/teams',
      action: 'teams.add',
      status: 201,
      async run(call) {
        const body = await call.body(teamBody)
        const team = await addTeam(db, body.name, limitsOf(body))
        const patch = budgetPatch(body.dailyBudgetUsd, body.monthlyBudgetUsd)
        if (hasAny(patch)) await setBudgets(db, 'team', body.name, patch)
        return team
      },
    },
    {
      method: 'PATCH',
      path: '/teams/:name',
      action: 'teams.set',
      async run(call) {
        const body = await call.body(setTeamBody)
        const patch = budgetPatch(body.dailyBudgetUsd, body.monthlyBudgetUsd)
        const limitPatch = limitsOf(body)
        if (!hasAny(patch) && !hasAny(limitPatch)) throw invalidRequest('Nothing to change: send rpm, tpm, dailyTokens, monthlyTokens, dailyBudgetUsd or monthlyBudgetUsd.')
        await getTeam(db, call.params.name!)
        if (hasAny(patch)) await setBudgets(db, 'team', call.params.name!, patch)
        return setTeamLimits(db, call.params.name!, limitPatch)
      },
    },
    {
      method: 'DELETE',
      path: '/teams/:name',
      action: 'teams.remove',
      async run(call) {
        await removeTeam(db, call.params.name!)
        return { object: 'team', name: call.params.name, deleted: true }
      },
    },
    {
      method: 'PATCH',
      path: '/clients/:name',
      action: 'clients.set',
      async run(call) {
        const body = await call.body(setClientBody)
        const patch = budgetPatch(body.dailyBudgetUsd, body.monthlyBudgetUsd)
        const limitPatch = limitsOf(body)
        if (!hasAny(patch) && !hasAny(limitPatch) && body.team === undefined && body.models === undefined) throw invalidRequest('Nothing to change: send models, team, rpm, tpm, dailyTokens, monthlyTokens, dailyBudgetUsd or monthlyBudgetUsd.')
        const clientName = call.params.name!
        await getClient(db, clientName)
        if (body.models !== undefined) await setClientModels(db, clientName, body.models)
        if (body.team !== undefined) await setClientTeam(db, clientName, body.team === null ? null : (await getTeam(db, body.team)).id)
        if (hasAny(patch)) await setBudgets(db, 'client', clientName, patch)
        if (hasAny(limitPatch)) return setClientLimits(db, clientName, limitPatch)
        return (await listClients(db)).find((c) => c.name === clientName)
      },
    },
    { method: 'GET', path: '/budgets', run: async () => list(await listBudgets(db)) },
    {
      method: 'PUT',
      path: '/budgets',
      action: 'budgets.set',
      async run(call) {
        const body = await call.body(budgetBody)
        const patch = budgetPatch(body.dailyUsd, body.monthlyUsd)
        if (!hasAny(patch)) throw invalidRequest('Nothing to change: send dailyUsd and/or monthlyUsd (null removes).')
        return list(await setBudgets(db, body.level, body.level === 'global' ? null : (body.name ?? null), patch))
      },
    },
    { method: 'GET', path: '/prices', run: async () => list(await listPrices(db)) },
    {
      method: 'PUT',
      path: '/prices',
      action: 'prices.set',
      run: async (call) => setPrice(db, await call.body(priceBody)),
    },
    {
      method: 'DELETE',
      path: '/prices/:model',
      action: 'prices.remove',
      async run(call) {
        const provider = call.query.get('provider')
        const removed = await removePrice(db, call.params.model!, provider)
        if (!removed) throw invalidRequest(`No stored price for '${call.params.model}'${provider ? ` on provider '${provider}'` : ''}.`, 'model')
        return { object: 'price', model: call.params.model, provider, deleted: true }
      },
    },
  ]
}
