// @ts-check
/**
 * How a PostgreSQL connection is made (pool settings, TLS modes as libpq means them) and what its errors
 * mean to the user. Plain JavaScript so the writer thread (postgres-thread.js) makes its connection the
 * same way as the store does (dialect.ts, which re-exports these), and words its errors alike.
 *
 * @typedef {typeof import('pg').default} Pg
 */

export const CONNECT_TIMEOUT_MS = 5000

/**
 * int8 (counts, ids, bigint columns) and numeric (sums of bigints) as numbers, as SQLite gives them.
 * @param {Pg} driver
 * @returns {import('pg').CustomTypesConfig}
 */
function numberTypes(driver) {
  const types = new driver.TypeOverrides()
  types.setTypeParser(20, Number)
  types.setTypeParser(1700, Number)
  return types
}

/**
 * @param {Pg} driver
 * @param {string} url
 * @returns {import('pg').PoolConfig}
 */
export function postgresConfig(driver, url) {
  return { connectionString: libpqSslModes(url), types: numberTypes(driver), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'proxy' }
}

/**
 * A pool that survives its connections' failures: the next query gets a fresh connection, or fails
 * and is retried by its caller. Nothing is connected yet.
 * @param {Pg} driver
 * @param {string} url
 * @param {number} max
 */
export function postgresPool(driver, url, max) {
  const pool = new driver.Pool({ ...postgresConfig(driver, url), max, idleTimeoutMillis: 30_000 })
  // An idle client whose server went away emits here; without a listener that would end the process.
  pool.on('error', () => {})
  // A client whose connection drops while checked out (between two statements of a batch) emits 'error'
  // with nobody listening; the statement in flight, or the next, fails and its caller retries.
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

/**
 * `sslmode` as libpq (psql) means it: `require` encrypts without checking the certificate, `verify-full`
 * checks it. The driver treats require like verify-full unless told `uselibpqcompat`.
 * @param {string} url
 */
function libpqSslModes(url) {
  try {
    const u = new URL(url)
    if (!u.searchParams.has('sslmode') || u.searchParams.has('uselibpqcompat')) return url
    u.searchParams.set('uselibpqcompat', 'true')
    return u.toString()
  } catch {
    return url
  }
}

/**
 * The URL without its password, for messages and logs (a Redis URL too).
 * @param {string} url
 * @param {string} [unparsable] what to say of a URL that does not parse
 */
export function redactUrl(url, unparsable = 'the database URL (unparsable)') {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return unparsable
  }
}

/**
 * One line the user can act on, never with the password.
 * @param {unknown} err
 * @param {string} url
 * @returns {string}
 */
export function describeConnectionError(err, url) {
  const e = /** @type {{ code?: string, message?: string } | undefined} */ (err)
  const where = redactUrl(url)
  let host = 'the server'
  let user = 'the user'
  let database = 'the database'
  try {
    const u = new URL(url)
    host = `${u.hostname}:${u.port || 5432}`
    user = decodeURIComponent(u.username) || user
    database = decodeURIComponent(u.pathname.slice(1)) || user
  } catch {
    // keep the generic words
  }
  const message = scrub(String(e?.message ?? err), url)
  switch (e?.code) {
    case '28P01':
      return `PostgreSQL at ${host} refused the password for user '${user}' (${where}). Check the password in --database-url or PROXY_DATABASE_URL.`
    case '3D000':
      return `PostgreSQL at ${host} has no database '${database}'. Create it (createdb -h ${host.split(':')[0]} ${database}) or fix the name in the URL (${where}).`
    case '28000':
      return /SSL|encryption/i.test(message)
        ? `PostgreSQL at ${host} requires TLS for this connection: add ?sslmode=require to the URL (${where}).`
        : `PostgreSQL at ${host} refused user '${user}': ${message} (${where}).`
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return `Cannot reach PostgreSQL at ${host} (${e?.code}). Is it running, and is the host and port in the URL right (${where})?`
  }
  if (/does not support SSL/i.test(message)) return `PostgreSQL at ${host} does not accept TLS, but the URL asks for it: remove sslmode or use sslmode=disable (${where}).`
  if (/timeout/i.test(message)) return `Cannot reach PostgreSQL at ${host}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s (${where}).`
  if (/self[- ]signed|certificate/i.test(message)) return `PostgreSQL at ${host}: the server's TLS certificate was not accepted (${message}). Give the CA with sslrootcert, or use sslmode=no-verify (${where}).`
  return `Cannot use PostgreSQL at ${host}: ${message} (${where}).`
}

/**
 * @param {string} text
 * @param {string} url
 */
function scrub(text, url) {
  try {
    const password = decodeURIComponent(new URL(url).password)
    return password ? text.split(password).join('***') : text
  } catch {
    return text
  }
}

/**
 * True for an error that says the database could not be reached (as opposed to a bad statement).
 * @param {unknown} err
 */
export function isConnectionFailure(err) {
  const code = /** @type {{ code?: string } | undefined} */ (err)?.code ?? ''
  return /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|57P0|08)/.test(code) || /Connection terminated|connection timeout|not queryable|Client has encountered a connection error/i.test(String(/** @type {Error | undefined} */ (err)?.message))
}
