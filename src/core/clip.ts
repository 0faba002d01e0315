/** The most of a client's string (a model name, a path) that an error message or a log line repeats. */
export const CLIP_CHARS = 256

/** Cuts text longer than `max` characters, saying how much was left out. */
export function clip(text: string, max = CLIP_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length - max} more characters)`
}
