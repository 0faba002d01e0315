/**
 * What a trace keeps of an answer: the model and id the upstream reported, and why it stopped. Read from
 * the answer objects and stream events of the three client APIs (chat/completions/embeddings, Anthropic's
 * Messages, OpenAI's Responses), without copying them.
 */

export interface AnswerFacts {
  model: string | null
  id: string | null
  /** one per choice (in choice order); empty when the answer said none */
  finishReasons: string[]
}

export const noFacts = (): AnswerFacts => ({ model: null, id: null, finishReasons: [] })

type Loose = Record<string, unknown>

/** A whole answer: a chat completion, a completion, an embeddings list, a Message or a Response. */
export function readAnswer(facts: AnswerFacts, value: Loose): void {
  take(facts, value.model, value.id)
  if (Array.isArray(value.choices)) readChoices(facts, value.choices)
  else if (typeof value.stop_reason === 'string') facts.finishReasons = [value.stop_reason]
  else if (value.object === 'response') readResponseStatus(facts, value)
}

/** One stream event: a chat or completion chunk, an Anthropic event, or a Responses event. */
export function readEvent(facts: AnswerFacts, event: Loose): void {
  if (Array.isArray(event.choices)) {
    take(facts, event.model, event.id)
    readChoices(facts, event.choices)
    return
  }
  switch (event.type) {
    case 'message_start':
      if (isObject(event.message)) take(facts, event.message.model, event.message.id)
      return
    case 'message_delta':
      if (isObject(event.delta) && typeof event.delta.stop_reason === 'string') facts.finishReasons = [event.delta.stop_reason]
      return
    case 'response.created':
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed':
      if (isObject(event.response)) {
        take(facts, event.response.model, event.response.id)
        if (event.type !== 'response.created') readResponseStatus(facts, event.response)
      }
  }
}

function readChoices(facts: AnswerFacts, choices: unknown[]): void {
  for (const choice of choices) {
    if (!isObject(choice) || typeof choice.finish_reason !== 'string') continue
    const index = typeof choice.index === 'number' && choice.index >= 0 && choice.index < 128 ? choice.index : facts.finishReasons.length
    facts.finishReasons[index] = choice.finish_reason
  }
}

/** A Response says why it stopped in its status, and for an incomplete one in incomplete_details. */
function readResponseStatus(facts: AnswerFacts, response: Loose): void {
  const reason = isObject(response.incomplete_details) && typeof response.incomplete_details.reason === 'string' ? response.incomplete_details.reason : response.status
  if (typeof reason === 'string') facts.finishReasons = [reason]
}

function take(facts: AnswerFacts, model: unknown, id: unknown): void {
  if (facts.model === null && typeof model === 'string') facts.model = model
  if (facts.id === null && typeof id === 'string') facts.id = id
}

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null
}
