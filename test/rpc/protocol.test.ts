import { inspect } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { hlcPack } from '../../src/cluster/hlc.js';
import { pack, unpack } from '../../src/codec.js';
import { ShoalError } from '../../src/errors.js';
import {
  checkHello,
  errorResponse,
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

/**
 * A failed put/del may have reached some replicas: its error carries the version it was stamped with,
 * so the client's next write is stamped after it (found by the simulator, seed 63). Only a well-formed
 * { ts: safe integer, node: string } crosses the wire; other details stay on the server.
 */
test('an error response carries a failed write\'s version across the wire; a malformed one is dropped', (t) => {
  const version = { ts: hlcPack(Date.UTC(2026, 10, 29, 12, 0, 5), 7), node: 'n1' };
  const err = new ShoalError('UNAVAILABLE', 'only 2 of 3 replicas answered', { version, addr: '127.0.0.1:1', reason: 'x' });
  t.deepEqual(err.toWire(), { code: 'UNAVAILABLE', message: 'only 2 of 3 replicas answered', version });
  const frame = unpack(pack(errorResponse(9, err)));
  t.deepEqual(parseResponse(frame), { id: 9, ok: false, error: { code: 'UNAVAILABLE', message: 'only 2 of 3 replicas answered', version } });
  t.deepEqual(parseResponse(unpack(pack(errorResponse(null, new ShoalError('TIMEOUT', 't', { version: { ts: 5, node: 'n2' } }))))), {
    id: null,
    ok: false,
    error: { code: 'TIMEOUT', message: 't', version: { ts: 5, node: 'n2' } },
  });
  // No version (an error that is not a stamped write), or a malformed one: the error without it.
  t.deepEqual(new ShoalError('UNAVAILABLE', 'm').toWire(), { code: 'UNAVAILABLE', message: 'm' });
  t.deepEqual(new ShoalError('UNAVAILABLE', 'm', { version: { ts: '5', node: 'n1' } }).toWire(), { code: 'UNAVAILABLE', message: 'm' });
  t.deepEqual(new ShoalError('UNAVAILABLE', 'm', { version: 'v' }).toWire(), { code: 'UNAVAILABLE', message: 'm' });
  const malformed: unknown[] = [
    'v1', 5, null, [5, 'n1'], Buffer.from('x'), {}, { ts: 5 }, { node: 'n1' }, { ts: '5', node: 'n1' }, { ts: 5, node: 1 },
    { ts: 1.5, node: 'n1' }, { ts: 2 ** 60, node: 'n1' }, { ts: Number.NaN, node: 'n1' },
  ];
  for (const bad of malformed) {
    t.deepEqual(
      parseResponse(unpack(pack({ id: 3, ok: false, error: { code: 'UNAVAILABLE', message: 'm', version: bad } }))),
      { id: 3, ok: false, error: { code: 'UNAVAILABLE', message: 'm' } },
      `version ${inspect(bad)} ignored`,
    );
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
