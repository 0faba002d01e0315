/**
 * item_reference entries that name items of the client's earlier responses. The Vercel AI SDK's default
 * provider sends earlier output this way, without previous_response_id, as OpenAI resolves any stored item.
 * An item id made here carries its response's id (output.ts), so each referenced response is one read;
 * only the client that made it can name its items. Ids this proxy did not make (OpenAI's own) are left for
 * a native upstream to resolve.
 */
import { itemType, type InputItem, type ItemReference, type ResponsesRequest } from '../../core/responses-schema.js'
import type { ResponseBook } from '../../store/response-book.js'
import { responseIdOfItem } from './output.js'

const idOf = (item: unknown): unknown => (item as { id?: unknown }).id
const isReference = (item: InputItem): item is ItemReference => itemType(item) === 'item_reference'

/** The items the input names by item_reference, from the earlier turns (`history`) or the client's stored responses. */
export async function findReferencedItems(book: ResponseBook, input: ResponsesRequest['input'], clientId: number, history: readonly InputItem[]): Promise<Map<string, InputItem>> {
  const found = new Map<string, InputItem>()
  if (!Array.isArray(input)) return found
  const wanted = new Set<string>()
  for (const item of input as InputItem[]) if (isReference(item)) wanted.add(item.id)
  if (wanted.size === 0) return found

  const take = (items: readonly unknown[]) => {
    for (const item of items) {
      const id = idOf(item)
      if (typeof id === 'string' && wanted.has(id) && !isReference(item as InputItem)) found.set(id, item as InputItem)
    }
  }
  take(history)
  const responses = new Set<string>()
  for (const id of wanted) {
    const responseId = found.has(id) ? null : responseIdOfItem(id)
    if (responseId) responses.add(responseId)
  }
  for (const responseId of responses) {
    const stored = await book.get(responseId, clientId)
    if (!stored || stored.native) continue
    take(stored.input ?? [])
    take((stored.response?.output as unknown[] | undefined) ?? [])
  }
  return found
}

/** The items, each reference that `found` resolves replaced by the item it names. */
export function withReferencesResolved(items: readonly InputItem[], found: ReadonlyMap<string, InputItem>): InputItem[] {
  if (found.size === 0) return items as InputItem[]
  return items.map((item) => (isReference(item) ? (found.get(item.id) ?? item) : item))
}
