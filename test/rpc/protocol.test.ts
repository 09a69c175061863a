import test from 'ava';
import fc from 'fast-check';
import { ShoalError } from '../../src/errors.js';
import {
  checkHello,
  optionalNumber,
  parseDelArgs,
  parsePutArgs,
  parseRequest,
  parseResponse,
  requireBin,
  requireString,
} from '../../src/rpc/protocol.js';
import { DEFAULT_RPC_LIMITS, resolveRpcLimits } from '../../src/rpc/limits.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ShoalError ? err.code : 'not-a-ShoalError';
  }
  return undefined;
}

test('parseRequest accepts well-formed requests and keeps the id of bad ones when it can', (t) => {
  t.deepEqual(parseRequest({ id: 3, op: 'get', args: { key: 'k' } }), { ok: true, request: { id: 3, op: 'get', args: { key: 'k' } } });
  t.deepEqual(parseRequest({ id: 4, op: 'stats' }), { ok: true, request: { id: 4, op: 'stats', args: {} } });
  const cases: [unknown, number | null][] = [
    [null, null],
    [[1, 'get', {}], null],
    [{ op: 'get' }, null],
    [{ id: -1, op: 'get' }, null],
    [{ id: 2 ** 32, op: 'get' }, null],
    [{ id: '1', op: 'get' }, null],
    [{ id: 5, op: '' }, 5],
    [{ id: 6, op: 'x'.repeat(200) }, 6],
    [{ id: 7, op: 'get', args: 'k' }, 7],
    [{ id: 8, op: 'get', args: Buffer.from('k') }, 8],
    [{ id: 9, op: 'get', args: new Date(0) }, 9],
  ];
  for (const [frame, id] of cases) {
    const parsed = parseRequest(frame);
    t.false(parsed.ok, JSON.stringify(frame));
    if (!parsed.ok) {
      t.is(parsed.id, id);
      t.is(parsed.error.code, 'BAD_REQUEST');
    }
  }
});

test('parseRequest never throws on anything msgpack can carry', (t) => {
  fc.assert(
    fc.property(fc.anything({ withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true }), (value) => {
      const parsed = parseRequest(value);
      t.true(typeof parsed.ok === 'boolean');
    }),
    { numRuns: 500 },
  );
});

test('parseResponse validates shape; unknown error codes become INTERNAL', (t) => {
  t.deepEqual(parseResponse({ id: 1, ok: true }), { id: 1, ok: true, result: null });
  t.deepEqual(parseResponse({ id: null, ok: false, error: { code: 'FRAME_TOO_LARGE', message: 'm' } }), {
    id: null,
    ok: false,
    error: { code: 'FRAME_TOO_LARGE', message: 'm' },
  });
  t.is((parseResponse({ id: 2, ok: false, error: { code: 'WAT', message: 'm' } }) as { error: { code: string } }).error.code, 'INTERNAL');
  for (const bad of [null, { id: 1 }, { id: null, ok: true }, { id: 1, ok: false }, { id: 'x', ok: false, error: {} }]) {
    t.is(parseResponse(bad), null);
  }
});

test('checkHello refuses another version or cluster with BAD_HANDSHAKE', (t) => {
  t.deepEqual(checkHello({ version: 1, cluster: 'c', peer: 'n2' }, 'c'), { version: 1, cluster: 'c', peer: 'n2' });
  t.deepEqual(checkHello({ version: 1, cluster: 'c' }, 'c'), { version: 1, cluster: 'c' });
  t.is(codeOf(() => checkHello({ version: 2, cluster: 'c' }, 'c')), 'BAD_HANDSHAKE');
  t.is(codeOf(() => checkHello({ version: 1, cluster: 'd' }, 'c')), 'BAD_HANDSHAKE');
  t.is(codeOf(() => checkHello({ version: 1 }, 'c')), 'BAD_HANDSHAKE');
  t.is(codeOf(() => checkHello({ version: 1, cluster: 'c', peer: 5 }, 'c')), 'BAD_HANDSHAKE');
});

test('argument validators: types, limits and the codes they give', (t) => {
  t.is(requireString({ key: 'k' }, 'key'), 'k');
  t.is(codeOf(() => requireString({}, 'key')), 'BAD_REQUEST');
  t.is(codeOf(() => requireString({ key: 'éé' }, 'key', { bytesMax: 3 })), 'KEY_TOO_LARGE');
  t.is(codeOf(() => requireString({ key: '' }, 'key', { nonEmpty: true })), 'BAD_REQUEST');
  const backing = Buffer.from('xxhixx');
  const bin = requireBin({ value: backing.subarray(2, 4) }, 'value');
  t.is(bin.toString(), 'hi');
  backing.fill(0);
  t.is(bin.toString(), 'hi', 'a copy, not a view into the receive buffer');
  t.is(codeOf(() => requireBin({ value: 'hi' }, 'value')), 'BAD_REQUEST');
  t.is(codeOf(() => requireBin({ value: Buffer.alloc(5) }, 'value', { bytesMax: 4 })), 'VALUE_TOO_LARGE');
  t.is(optionalNumber({}, 'n'), undefined);
  t.is(optionalNumber({ n: null }, 'n'), undefined);
  t.is(optionalNumber({ n: 3 }, 'n', { integer: true, min: 0 }), 3);
  t.is(codeOf(() => optionalNumber({ n: 1.5 }, 'n', { integer: true })), 'BAD_REQUEST');
  t.is(codeOf(() => optionalNumber({ n: Infinity }, 'n')), 'BAD_REQUEST');
  t.is(codeOf(() => optionalNumber({ n: '3' }, 'n')), 'BAD_REQUEST');
  t.deepEqual(parsePutArgs({ key: 'k', value: Buffer.from('v'), ttlMs: 10, consistency: 'all', seenTs: 9 }), {
    key: 'k',
    value: Buffer.from('v'),
    ttlMs: 10,
    consistency: 'all',
    seenTs: 9,
  });
  t.deepEqual(parseDelArgs({ key: 'k' }), { key: 'k' });
  t.is(codeOf(() => parseDelArgs({ key: 'k', consistency: 'most' })), 'BAD_REQUEST');
  t.is(codeOf(() => parsePutArgs({ key: 'k', value: Buffer.from('v'), ttlMs: 0 })), 'BAD_REQUEST');
  t.is(codeOf(() => parsePutArgs({ key: 'k', value: Buffer.from('v'), ttlMs: 11 }, { ttlMsMax: 10 })), 'BAD_REQUEST');
});

test('resolveRpcLimits overlays the defaults and refuses nonsense with CONFIG', (t) => {
  t.deepEqual(resolveRpcLimits(), { ...DEFAULT_RPC_LIMITS });
  t.is(resolveRpcLimits({ connectionsMax: 3 }).connectionsMax, 3);
  t.is(codeOf(() => resolveRpcLimits({ idleTimeoutMs: 0 })), 'CONFIG');
  t.is(codeOf(() => resolveRpcLimits({ frameBytesMax: 1.5 })), 'CONFIG');
});
