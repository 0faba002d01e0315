import { Command } from 'commander'
import { CliError, dataDirOption, jsonOption, out, printJson, withStore, type CliDeps } from './context.js'

/** Test hook: the process kills itself (SIGKILL) after re-encrypting this many rows, inside the transaction. */
const KILL_AFTER_ENV = 'PROXY_TEST_ROTATE_KILL_AFTER'

export function secretsCommand(deps: CliDeps): Command {
  const cmd = new Command('secrets').description('the master key that encrypts upstream keys at rest')

  dataDirOption(jsonOption(cmd.command('rotate-master')))
    .description('re-encrypt every stored upstream key under a new master key, in one transaction, and keep the old key in the ring')
    .option('--new-key-from-env <VAR>', 'use the Fernet key in this environment variable instead of generating one')
    .addHelpText(
      'after',
      '\nThe ring "new,old" is written where the master key lives (master.key or the OS keychain). When it comes from\n' +
        'PROXY_MASTER_KEY or a systemd credential, proxy cannot change it: a generated key is printed once, to set there.\n' +
        "Drop the old key when 'proxy doctor' shows no secret under it. See docs/secrets.md.",
    )
    .action(async (opts: { newKeyFromEnv?: string; json?: boolean; dataDir?: string; databaseUrl?: string }) => {
      // loaded here, so that other commands (and --help) do not load the store
      const [{ describeSource }, { generateFernetKey }, { storeKeyRing }, { reencryptSecrets, rotatedRing, secretsPerKey }, { resolveDataDir }] = await Promise.all([
        import('../store/db.js'),
        import('../store/fernet.js'),
        import('../store/master-key.js'),
        import('../store/master-rotation.js'),
        import('../store/paths.js'),
      ])
      const given = opts.newKeyFromEnv === undefined ? undefined : deps.env[opts.newKeyFromEnv]?.trim()
      if (opts.newKeyFromEnv !== undefined && !given) throw new CliError(`Environment variable ${opts.newKeyFromEnv} is not set or empty.`)
      const newKey = given ?? generateFernetKey()
      const dataDir = resolveDataDir(opts.dataDir, deps.env)
      const killAfter = Number(deps.env[KILL_AFTER_ENV] ?? NaN)

      const result = await withStore(deps, { dataDir, databaseUrl: opts.databaseUrl }, async (store) => {
        const before = store.masterKey
        const ring = rotatedRing(newKey, before.keys)
        const { none } = await secretsPerKey(store)
        if (none > 0) throw new CliError(`${none} stored upstream key(s) open with no key of the current ring, so they cannot be re-encrypted; nothing was changed. 'proxy doctor' counts them; add the key they were written with to the ring, or remove them.`)
        // The ring is stored before the secrets change: if the process dies in between, the ring still
        // holds the old key and every secret still opens.
        const stored = await storeKeyRing({ dataDir, env: deps.env, keychain: deps.keychain }, before, ring)
        const secrets = await reencryptSecrets(store, ring, {
          afterRow: Number.isInteger(killAfter) ? (n) => n >= killAfter && process.kill(process.pid, 'SIGKILL') : undefined,
        })
        return { secrets, ring: ring.length, source: before.source, where: describeSource(before), stored }
      })

      // The key is shown only when the operator must put it somewhere proxy cannot write, and did not supply it.
      const mustShow = !result.stored && given === undefined
      if (opts.json) {
        return printJson(deps, { secrets: result.secrets, ringSize: result.ring, source: result.source, stored: result.stored, ...(mustShow ? { newKey } : {}) })
      }
      out(deps, `Re-encrypted ${result.secrets} upstream key(s) under the new master key, in one transaction.`)
      if (result.stored) {
        out(deps, `Stored the ring (new key first, then ${result.ring - 1} older) in ${result.where}. Running servers on this machine pick it up at their next reload.`)
      } else {
        const name = result.source === 'env' ? 'PROXY_MASTER_KEY' : 'the credential file (one key per line)'
        if (mustShow) {
          out(deps, `\nThe master key comes from ${result.where}, which proxy cannot change. The new key, shown this once and never logged:\n\n  ${newKey}\n`)
        } else {
          out(deps, `\nThe master key comes from ${result.where}, which proxy cannot change.`)
        }
        out(deps, `Set ${name} on every instance to the new key first, then the keys it holds now (newest first)${result.source === 'env' ? ', e.g. PROXY_MASTER_KEY=NEW,$PROXY_MASTER_KEY' : ''}, and restart it. Until then, a running server keeps the secrets it has decrypted.`)
      }
      out(deps, "Drop the old key from the ring once 'proxy doctor' shows no secret under it on every store.")
    })

  return cmd
}
