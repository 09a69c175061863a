/** `shoal keyring`: local key generation, argument checks and the rendering of a cluster-wide result. */
import test from 'ava';
import { keyringText } from '../../src/cli/keyring-command.js';
import { runCli } from '../../src/cli/run.js';
import { keyId, parseKey } from '../../src/security/keyring.js';
import { bufferIo } from '../node/helpers.js';

test('generate prints a fresh 32-byte base64 key each time; --json adds its id', async (t) => {
  const a = bufferIo();
  const b = bufferIo();
  t.is(await runCli(['keyring', 'generate'], a.io), 0);
  t.is(await runCli(['keyring', 'generate'], b.io), 0);
  t.is(parseKey(a.stdout().trim()).length, 32);
  t.not(a.stdout(), b.stdout());
  const j = bufferIo();
  t.is(await runCli(['keyring', 'generate', '--json'], j.io), 0);
  const parsed = JSON.parse(j.stdout()) as { key: string; id: string };
  t.is(parsed.id, keyId(Buffer.from(parsed.key, 'base64')));
});

test('bad keys are usage errors before anything is sent; "-" reads the key from stdin', async (t) => {
  for (const args of [['keyring', 'install', 'c2hvcnQ='], ['keyring', 'use', 'not-a-key!'], ['keyring', 'remove', '1234567']]) {
    const b = bufferIo();
    t.is(await runCli([...args, '--addr', '127.0.0.1:1'], b.io), 2, args.join(' '));
    t.regex(b.stderr(), /the key must be/);
  }
  const empty = bufferIo('\n');
  t.is(await runCli(['keyring', 'install', '-', '--addr', '127.0.0.1:1'], empty.io), 2);
  t.regex(empty.stderr(), /needs a key/);
  // A valid key from stdin gets as far as connecting (nothing listens on port 1: exit 3).
  const key = Buffer.alloc(32, 1).toString('base64');
  const piped = bufferIo(`${key}\n`);
  t.is(await runCli(['keyring', 'install', '-', '--addr', '127.0.0.1:1', '--timeout', '2s'], piped.io), 3, piped.stderr());
  t.regex(piped.stderr(), /UNAVAILABLE/);
  const none = bufferIo();
  t.is(await runCli(['keyring'], none.io), 2);
  t.regex(none.stderr(), /name a keyring action/);
});

test('the result text: per-node outcome, keys with primary and installed counts, failures and skipped members', (t) => {
  const text = keyringText({
    action: 'install', nodes: 3, ok: 2,
    results: [
      { node: 'n1', ok: true, primary: 'aaaaaaaa', keys: ['aaaaaaaa', 'bbbbbbbb'] },
      { node: 'n2', ok: true, primary: 'aaaaaaaa', keys: ['aaaaaaaa', 'bbbbbbbb'] },
      { node: 'n3', ok: false, error: { code: 'TIMEOUT', message: 'n3 did not answer' } },
    ],
    keys: [{ id: 'aaaaaaaa', nodes: 2, primary: 2 }, { id: 'bbbbbbbb', nodes: 2, primary: 0 }],
    skipped: ['n4'],
  });
  t.regex(text, /^n1\s+ok$/m);
  t.regex(text, /^n3\s+error: n3 did not answer \(TIMEOUT\)$/m);
  t.regex(text, /^aaaaaaaa\s+2\/2\s+2\/2$/m);
  t.regex(text, /^bbbbbbbb\s+0\/2\s+2\/2$/m);
  t.regex(text, /Not asked \(dead or left\): n4/);
});
