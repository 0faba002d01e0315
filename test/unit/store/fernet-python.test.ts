import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { createFernet, createFernetRing, generateFernetKey, isValidFernetKey } from '../../../src/store/fernet.js'

// Secrets go through the environment, never argv, where other users could read them from ps.
function python(script: string, env: Record<string, string> = {}) {
  return spawnSync('python3', ['-c', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  })
}

function pythonSkipReason(): string | null {
  const probe = python('import cryptography.fernet')
  if (probe.error) return `python3 could not be run (${probe.error.message})`
  if (probe.status !== 0) return `python3 has no usable 'cryptography' package (${probe.stderr.trim().split('\n').pop() ?? ''})`
  return null
}

const skipReason = pythonSkipReason()
if (skipReason !== null) {
  console.warn(`[fernet-python.test] SKIPPING Python interop tests: ${skipReason}.`)
}

describe('Fernet interop with Python cryptography', () => {
  const text = 'sk-test-ключ-🔑'

  it.skipIf(skipReason !== null)('Python decrypts a token we made', () => {
    const key = generateFernetKey()
    const token = createFernet(key).encrypt(text)
    const run = python(
      'import os, sys\n' +
        'from cryptography.fernet import Fernet\n' +
        "sys.stdout.write(Fernet(os.environ['FERNET_KEY']).decrypt(os.environ['FERNET_TOKEN']).hex())\n",
      { FERNET_KEY: key, FERNET_TOKEN: token },
    )
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    expect(Buffer.from(run.stdout, 'hex').toString('utf8')).toBe(text)
  })

  it.skipIf(skipReason !== null)('we decrypt a token Python made with our key', () => {
    const key = generateFernetKey()
    const run = python(
      'import os, sys\n' +
        'from cryptography.fernet import Fernet\n' +
        "sys.stdout.write(Fernet(os.environ['FERNET_KEY']).encrypt(bytes.fromhex(os.environ['FERNET_PLAIN'])).decode())\n",
      { FERNET_KEY: key, FERNET_PLAIN: Buffer.from(text, 'utf8').toString('hex') },
    )
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    expect(createFernet(key).decryptString(run.stdout.trim(), { ttlSec: 300 })).toBe(text)
  })

  it.skipIf(skipReason !== null)("accepts keys from Python's Fernet.generate_key()", () => {
    const run = python('from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
    expect(run.status).toBe(0)
    expect(isValidFernetKey(run.stdout.trim())).toBe(true)
  })

  it.skipIf(skipReason !== null)("behaves like Python's MultiFernet: each reads the other's tokens under a ring new,old", () => {
    const [newKey, oldKey] = [generateFernetKey(), generateFernetKey()]
    const ours = { fromRing: createFernetRing([newKey, oldKey]).encrypt('made by the ring'), fromOld: createFernet(oldKey).encrypt('made under the old key') }
    const run = python(
      'import os, sys, json\n' +
        'from cryptography.fernet import Fernet, MultiFernet\n' +
        "ring = MultiFernet([Fernet(os.environ['NEW_KEY']), Fernet(os.environ['OLD_KEY'])])\n" +
        "tokens = json.loads(os.environ['TOKENS'])\n" +
        "out = {k: ring.decrypt(v.encode()).decode() for k, v in tokens.items()}\n" +
        "out['python'] = ring.encrypt(b'made by MultiFernet').decode()\n" +
        'sys.stdout.write(json.dumps(out))\n',
      { NEW_KEY: newKey, OLD_KEY: oldKey, TOKENS: JSON.stringify(ours) },
    )
    expect(run.stderr).toBe('')
    const out = JSON.parse(run.stdout) as Record<string, string>
    expect(out.fromRing).toBe('made by the ring')
    expect(out.fromOld).toBe('made under the old key')
    // MultiFernet encrypts with its first key, as we do: the new key alone opens it.
    expect(createFernet(newKey).decryptString(out.python!)).toBe('made by MultiFernet')
    expect(createFernetRing([newKey, oldKey]).keyIndexOf(out.python!)).toBe(0)
  })
})
