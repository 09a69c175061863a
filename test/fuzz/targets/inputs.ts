/** Valid inputs the fuzzers start from: RPC requests, membership messages, sync states. */
import type { Message, SyncState, WireMember } from '../../../src/membership/messages.js';
import { encodeFrame } from '../../../src/rpc/framing.js';
import type { Rng } from '../lib/rng.js';

export const FUZZ_CLUSTER = 'fuzz';

/** A request frame a client could send (sometimes with odd but well-typed arguments). */
export function randomRequest(rng: Rng, id: number): Record<string, unknown> {
  const key = `fz/${rng.text(12)}`;
  switch (rng.int(7)) {
    case 0:
      return { id, op: 'get', args: { key, consistency: rng.pick(['one', 'quorum', 'all']) } };
    case 1:
      return { id, op: 'put', args: { key, value: rng.bytes(rng.int(48)), ttlMs: rng.chance(0.3) ? rng.range(1, 1e9) : undefined, seenTs: rng.int(1e6) } };
    case 2:
      return { id, op: 'del', args: { key, seenTs: rng.int(1e6) } };
    case 3:
      return { id, op: 'health', args: {} };
    case 4:
      return { id, op: rng.text(10), args: { [rng.text(5)]: rng.text(5) } };
    case 5:
      return { id, op: 'put', args: { key, value: rng.text(20) } }; // wrong type: value must be bin
    default:
      return { id, op: 'get', args: { key: rng.chance(0.5) ? 42 : null } };
  }
}

export function hello(rng: Rng): Record<string, unknown> {
  return { id: 0, op: 'hello', args: { version: 1, cluster: FUZZ_CLUSTER, peer: rng.chance(0.3) ? `p${rng.int(9)}` : undefined } };
}

const STATES = ['alive', 'suspect', 'dead', 'left'] as const;

function memberId(rng: Rng): string {
  return `n${rng.int(24)}`;
}

function gossipAddr(rng: Rng, id: string): string {
  return `127.0.0.${1 + (Number(id.slice(1)) % 250)}:${7000 + rng.int(3)}`;
}

export function randomMessage(rng: Rng): Message {
  const id = memberId(rng);
  const i = rng.chance(0.8) ? rng.int(20) : rng.int(2 ** 40);
  switch (rng.int(8)) {
    case 0:
      return { t: 'ping', s: rng.int(2 ** 32), n: rng.chance(0.7) ? 'n0' : id };
    case 1:
      return { t: 'ack', s: rng.int(2 ** 32) };
    case 2:
      return { t: 'nack', s: rng.int(2 ** 32) };
    case 3:
      return { t: 'ping-req', s: rng.int(2 ** 32), n: id, a: gossipAddr(rng, id) };
    case 4: {
      const alive: Message = { t: 'alive', id, i, a: gossipAddr(rng, id), r: `127.0.0.1:${8000 + rng.int(50)}` };
      if (rng.chance(0.3)) alive.z = `z${rng.int(3)}`;
      if (rng.chance(0.2)) alive.g = { role: rng.text(6) };
      return alive;
    }
    case 5:
      return { t: 'suspect', id: rng.chance(0.2) ? 'n0' : id, i, f: memberId(rng) };
    case 6:
      return { t: 'dead', id: rng.chance(0.2) ? 'n0' : id, i, f: memberId(rng) };
    default:
      return { t: 'left', id, i };
  }
}

export function randomPacket(rng: Rng): { v: number; m: Message[] } {
  const m: Message[] = [];
  const n = rng.range(1, 6);
  for (let k = 0; k < n; k++) m.push(randomMessage(rng));
  return { v: 1, m };
}

export function randomSyncState(rng: Rng): SyncState {
  const m: WireMember[] = [];
  const n = rng.int(8);
  for (let k = 0; k < n; k++) {
    const id = memberId(rng);
    m.push({ id, a: gossipAddr(rng, id), r: `127.0.0.1:${8000 + rng.int(50)}`, s: rng.pick(STATES), i: rng.int(30) });
  }
  return { v: 1, f: memberId(rng), j: rng.chance(0.5), m };
}

/** A valid request stream: a hello and 1–5 requests, framed, with each frame's start offset. */
export function requestStream(rng: Rng): { bytes: Buffer; headers: number[]; count: number } {
  const frames = [encodeFrame(hello(rng))];
  const n = rng.range(1, 5);
  for (let i = 1; i <= n; i++) frames.push(encodeFrame(randomRequest(rng, i)));
  const headers: number[] = [];
  let off = 0;
  for (const frame of frames) {
    headers.push(off);
    off += frame.length;
  }
  return { bytes: Buffer.concat(frames), headers, count: frames.length };
}
