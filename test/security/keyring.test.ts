import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { ShoalError } from '../../src/errors.js';
import { ENVELOPE_OVERHEAD_BYTES, generateKey, Keyring, keyId, KEY_ID_BYTES, NONCE_BYTES } from '../../src/security/keyring.js';
import { KEYRING_FILE, loadKeyring, parseKeyringFile, saveKeyring } from '../../src/security/keyring-file.js';

const CLUSTER = 'prod-eu';

function configCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ShoalError ? err.code : `not a ShoalError: ${String(err)}`;
  }
  return undefined;
}

test('seal then open returns the plaintext; the envelope is the plaintext plus 33 bytes', (t) => {
  const ring = new Keyring([generateKey()]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
      const envelope = ring.seal(bytes, CLUSTER);
      t.is(envelope.length, bytes.length + ENVELOPE_OVERHEAD_BYTES);
      t.is(envelope[0], 1);
      t.is(envelope.toString('hex', 1, 1 + KEY_ID_BYTES), ring.primaryId());
      t.deepEqual(ring.open(envelope, CLUSTER), Buffer.from(bytes));
    }),
    { numRuns: 200 },
  );
  t.is(ring.stats().sealed, ring.stats().opened);
});

test('any single bit flipped anywhere in the envelope makes open fail and counts it', (t) => {
  const ring = new Keyring([generateKey()]);
  const envelope = ring.seal(Buffer.from('{"t":"alive","id":"n1","i":7}'), CLUSTER);
  for (let bit = 0; bit < envelope.length * 8; bit++) {
    const tampered = Buffer.from(envelope);
    tampered[bit >> 3] ^= 1 << (bit & 7);
    t.is(ring.open(tampered, CLUSTER), null, `bit ${bit}`);
  }
  const failures = ring.stats().openFailures;
  t.is(failures.version + failures['unknown-key'] + failures.auth, envelope.length * 8);
  t.is(failures.version, 8);
  t.is(failures['unknown-key'], KEY_ID_BYTES * 8);
  t.deepEqual(ring.open(envelope, CLUSTER)?.toString(), '{"t":"alive","id":"n1","i":7}', 'the original still opens');
});

test('truncated, extended or empty envelopes fail without throwing', (t) => {
  const ring = new Keyring([generateKey()]);
  const envelope = ring.seal(Buffer.from('hello'), CLUSTER);
  for (let n = 0; n < envelope.length; n++) t.is(ring.open(envelope.subarray(0, n), CLUSTER), null);
  t.is(ring.open(Buffer.concat([envelope, Buffer.from([0])]), CLUSTER), null);
  t.true(ring.stats().openFailures.short > 0);
});

test('an envelope sealed for another cluster name does not open', (t) => {
  const key = generateKey();
  const a = new Keyring([key]);
  const b = new Keyring([key]);
  const envelope = a.seal(Buffer.from('ping'), 'cluster-a');
  t.is(b.open(envelope, 'cluster-b'), null);
  t.is(b.open(envelope, 'cluster-a ')?.toString(), undefined);
  t.is(b.open(envelope, 'cluster-a')?.toString(), 'ping', 'same key, same cluster: opens on another node');
});

test('a key not installed is refused by id, and a wrong key with a forged id fails authentication', (t) => {
  const ring = new Keyring([generateKey()]);
  const stranger = new Keyring([generateKey()]);
  t.is(ring.open(stranger.seal(Buffer.from('x'), CLUSTER), CLUSTER), null);
  t.is(ring.stats().openFailures['unknown-key'], 1);
  const forged = stranger.seal(Buffer.from('x'), CLUSTER);
  Buffer.from(ring.primaryId(), 'hex').copy(forged, 1);
  t.is(ring.open(forged, CLUSTER), null);
  t.is(ring.stats().openFailures.auth, 1);
});

test('rotation: install a new key everywhere, make it primary, remove the old one; old messages open until then', (t) => {
  const oldKey = generateKey();
  const newKey = generateKey();
  const n1 = new Keyring([oldKey]);
  const n2 = new Keyring([oldKey]);
  const beforeRotation = n1.seal(Buffer.from('sealed with the old key'), CLUSTER);

  // Step 1: install on every node. Nothing changes on the wire yet.
  t.is(n1.install(newKey), keyId(newKey));
  n2.install(newKey.toString('base64'));
  t.is(n1.primaryId(), keyId(oldKey));

  // Step 2: use the new key on one node first: the others can already open its messages.
  n1.use(newKey);
  const afterRotation = n1.seal(Buffer.from('sealed with the new key'), CLUSTER);
  t.is(afterRotation.toString('hex', 1, 5), keyId(newKey));
  t.is(n2.open(afterRotation, CLUSTER)?.toString(), 'sealed with the new key');
  t.is(n1.open(beforeRotation, CLUSTER)?.toString(), 'sealed with the old key');
  t.is(n1.open(n2.seal(Buffer.from('late'), CLUSTER), CLUSTER)?.toString(), 'late', 'a node not yet switched is still understood');

  // The primary cannot be removed; a key that is not primary can.
  t.is(configCode(() => n1.remove(newKey)), 'CONFIG');
  n2.use(keyId(newKey));
  n1.remove(keyId(oldKey));
  n2.remove(oldKey);
  t.is(n1.open(beforeRotation, CLUSTER), null, 'after removal the old key no longer opens anything');
  t.deepEqual(n1.list().map((k) => [k.id, k.primary]), [[keyId(newKey), true]]);
});

test('nonces are unique across many seals, and two seals of the same plaintext differ', (t) => {
  const ring = new Keyring([generateKey()]);
  const nonces = new Set<string>();
  const count = 20_000;
  for (let i = 0; i < count; i++) nonces.add(ring.seal(Buffer.alloc(0), CLUSTER).toString('hex', 1 + KEY_ID_BYTES, 1 + KEY_ID_BYTES + NONCE_BYTES));
  t.is(nonces.size, count);
  const a = ring.seal(Buffer.from('same'), CLUSTER);
  const b = ring.seal(Buffer.from('same'), CLUSTER);
  t.notDeepEqual(a, b);
});

test('bad keys and bad operations are CONFIG errors', (t) => {
  t.is(configCode(() => new Keyring([])), 'CONFIG');
  t.is(configCode(() => new Keyring([Buffer.alloc(16)])), 'CONFIG', 'AES-128 key');
  t.is(configCode(() => new Keyring(['not base64!'])), 'CONFIG');
  t.is(configCode(() => new Keyring([Buffer.alloc(31).toString('base64')])), 'CONFIG');
  const ring = new Keyring([generateKey()]);
  t.is(configCode(() => ring.use(generateKey())), 'CONFIG', 'use of a key not installed');
  t.is(configCode(() => ring.remove('00000000')), 'CONFIG', 'remove of an unknown id');
  const id = ring.primaryId();
  t.is(ring.install(ring.exportKeys().primary), id, 'installing twice is a no-op');
  t.is(ring.list().length, 1);
  for (let i = 1; i < 16; i++) ring.install(generateKey());
  t.is(configCode(() => ring.install(generateKey())), 'CONFIG', 'at most 16 keys');
});

test('the keyring file round-trips, is written 0600, and loose permissions are refused', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-keyring-'));
  try {
    t.is(await loadKeyring(path.join(dir, KEYRING_FILE)), null, 'no file: encryption not configured');
    const ring = new Keyring([generateKey(), generateKey()]);
    ring.use(ring.list()[1].id);
    const file = path.join(dir, KEYRING_FILE);
    await saveKeyring(file, ring);
    t.is((await fs.stat(file)).mode & 0o777, 0o600);
    const loaded = await loadKeyring(file);
    t.is(loaded?.primaryId(), ring.primaryId());
    t.deepEqual(loaded?.list().map((k) => k.id).sort(), ring.list().map((k) => k.id).sort());
    t.is(loaded?.open(ring.seal(Buffer.from('x'), CLUSTER), CLUSTER)?.toString(), 'x');

    await fs.chmod(file, 0o644);
    const err = await t.throwsAsync(loadKeyring(file));
    t.is((err as ShoalError).code, 'CONFIG');
    t.regex(err?.message ?? '', /chmod 600/);
    t.truthy(await loadKeyring(file, { allowLoosePermissions: true }));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('malformed keyring files are CONFIG errors naming the file', (t) => {
  const key = generateKey().toString('base64');
  const bad = [
    'not json',
    '[]',
    '{"keys": [], "primary": ""}',
    `{"keys": ["${key}"]}`,
    `{"keys": ["${key}"], "primary": "${generateKey().toString('base64')}"}`,
    `{"keys": ["${key}", 7], "primary": "${key}"}`,
    `{"keys": ["c2hvcnQ="], "primary": "c2hvcnQ="}`,
  ];
  for (const text of bad) {
    const err = t.throws(() => parseKeyringFile('/data/keyring.json', text), undefined, text);
    t.is((err as ShoalError).code, 'CONFIG', text);
    t.regex(err?.message ?? '', /\/data\/keyring\.json/);
  }
  t.is(parseKeyringFile('f', `{"keys": ["${key}"], "primary": "${key}"}`).list().length, 1);
});
