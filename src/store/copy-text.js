// @ts-check
/**
 * Rows in the text format of PostgreSQL's `COPY … FROM STDIN`: a line a row, tab between columns, `\N`
 * for NULL, and backslash escapes for the characters the format gives a meaning to; a NUL, which
 * PostgreSQL's text cannot hold, becomes U+FFFD. One string a batch, encoded once, in place of a
 * parameter per value (see postgres-writer.js).
 */

const SPECIALS = /[\\\t\n\r\0]/g
/** @type {Record<string, string>} */
const ESCAPED = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  // PostgreSQL's text holds no NUL: one in a client's model name would fail the whole batch, every retry
  '\0': '\uFFFD',
}

/** @param {string} s */
function escapeText(s) {
  return s.replace(SPECIALS, (c) => /** @type {string} */ (ESCAPED[c]))
}

/**
 * A parameter PostgreSQL can store: text without NUL (see ESCAPED), anything else as it is. For the
 * statements that bind parameters, whose text comes from clients too (a usage row's model name).
 * @param {unknown} v
 */
export function storable(v) {
  return typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v
}

/**
 * One value as a COPY text field: NULL for null and undefined, numbers and booleans as PostgreSQL reads
 * them, a Date as ISO time, and anything else as JSON (what `pg` sends for an object parameter).
 * @param {unknown} v
 * @returns {string}
 */
export function copyField(v) {
  switch (typeof v) {
    case 'string':
      return escapeText(v)
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(v)
    case 'undefined':
      return '\\N'
    default:
      if (v === null) return '\\N'
      if (v instanceof Date) return v.toISOString()
      return escapeText(JSON.stringify(v))
  }
}

/**
 * Rows as COPY text, every row ending in a newline. Joined rather than appended: `+=` would build a rope
 * of a node per field, all alive until the end, which a thread with a small young generation promotes.
 * @param {ReadonlyArray<ReadonlyArray<unknown>>} rows
 * @returns {string}
 */
export function copyText(rows) {
  const lines = new Array(rows.length + 1)
  /** @type {string[]} */
  const fields = []
  for (let r = 0; r < rows.length; r++) {
    const row = /** @type {ReadonlyArray<unknown>} */ (rows[r])
    fields.length = row.length
    for (let c = 0; c < row.length; c++) fields[c] = copyField(row[c])
    lines[r] = fields.join('\t')
  }
  lines[rows.length] = ''
  return lines.join('\n')
}
