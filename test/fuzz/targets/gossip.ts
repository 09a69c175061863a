/**
 * Membership input: mutated datagrams through decodePacket, and a running MembershipCore fed mutated
 * datagrams and push-pull states on an advancing clock.
 */
import { pack, unpack } from '../../../src/codec.js';
import { MembershipCore } from '../../../src/membership/core.js';
import { decodePacket, encodePacket, validateSyncState } from '../../../src/membership/messages.js';
import { mulberry32 } from '../../../src/membership/sim/random.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';
import type { Rng } from '../lib/rng.js';
import { randomPacket, randomSyncState } from './inputs.js';

const LIMITS = { datagramBytesMax: 1400, compoundMessagesMax: 32, metaBytesMax: 512 };
const MEMBERS_MAX = 16;

function datagram(rng: Rng): { bytes: Buffer; intact: boolean } {
  const valid = encodePacket(randomPacket(rng));
  const donor = encodePacket(randomPacket(rng));
  const roll = rng.float();
  const bytes = roll < 0.05 ? valid : roll < 0.1 ? rng.bytes(rng.int(1600)) : mutate(rng, valid, { donors: [donor] });
  return { bytes, intact: bytes === valid };
}

export const gossipDecodeTarget: FuzzTarget = {
  name: 'gossip-decode',
  feeds: 'mutated datagrams → decodePacket',
  async setup() {
    return {
      runCase(rng) {
        const { bytes, intact } = datagram(rng);
        let decoded;
        try {
          decoded = decodePacket(bytes, LIMITS);
        } catch (err) {
          throw new UnexpectedError(`decodePacket threw (it must never throw): ${String(err)}`);
        }
        if (intact && !decoded.ok) throw new InvariantError(`a valid datagram was refused: ${decoded.detail}`);
        if (decoded.ok && decoded.value.m.length > LIMITS.compoundMessagesMax) throw new InvariantError('more messages than the limit');
        return decoded.ok ? 'accepted' : 'rejected';
      },
      async close() {},
    };
  },
};

export const gossipCoreTarget: FuzzTarget = {
  name: 'gossip-core',
  feeds: 'mutated datagrams + sync states → MembershipCore',
  checkEvery: 500,
  async setup(runSeed) {
    const core = new MembershipCore({
      self: { id: 'n0', gossip: '127.0.0.1:7000', rpc: '127.0.0.1:8000' },
      config: { ...LIMITS, membersMax: MEMBERS_MAX, syncMembersMax: 64 },
      random: mulberry32(runSeed),
    });
    let now = 1_000_000;
    core.join(now, ['127.0.0.2:7000']);
    const checkOutput = (out: ReturnType<MembershipCore['tick']>): void => {
      for (const p of out.packets) {
        if (p.bytes > LIMITS.datagramBytesMax) throw new InvariantError(`core sent a ${p.bytes}-byte datagram`);
        if (!decodePacket(encodePacket(p.packet), LIMITS).ok) throw new InvariantError('core sent a datagram it would refuse itself');
      }
    };
    return {
      runCase(rng) {
        now += rng.int(300);
        const from = `127.0.0.${1 + rng.int(30)}:7000`;
        let accepted = false;
        try {
          if (rng.chance(0.8)) {
            const { bytes } = datagram(rng);
            const before = core.stats().packetsReceived;
            checkOutput(core.receiveBytes(now, bytes, from));
            accepted = core.stats().packetsReceived > before;
          } else {
            const valid = pack(randomSyncState(rng));
            const bytes = rng.chance(0.1) ? valid : mutate(rng, valid);
            let raw: unknown;
            try {
              raw = unpack(bytes);
            } catch {
              return 'rejected'; // the frame decoder refuses it before membership sees it
            }
            const state = validateSyncState(raw, { syncMembersMax: 64, metaBytesMax: LIMITS.metaBytesMax });
            if (state.ok) {
              const handled = core.handleSync(now, state.value);
              checkOutput(handled.output);
              accepted = true;
            }
          }
          if (rng.chance(0.3)) checkOutput(core.tick(now));
        } catch (err) {
          if (err instanceof InvariantError) throw err;
          throw new UnexpectedError(`MembershipCore threw: ${String((err as Error).stack ?? err)}`);
        }
        return accepted ? 'accepted' : 'rejected';
      },
      async check() {
        const members = core.members();
        if (members.length > MEMBERS_MAX) throw new InvariantError(`${members.length} members known, limit ${MEMBERS_MAX}`);
        const self = core.self();
        if (self.state !== 'alive') throw new InvariantError(`self is ${self.state}: hostile gossip was not refuted`);
        if (!/^[0-9a-f]+$/.test(core.checksum())) throw new InvariantError('checksum is not hex');
      },
      async close() {},
    };
  },
};
