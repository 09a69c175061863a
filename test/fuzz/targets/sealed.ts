/**
 * Gossip encryption input: envelopes sealed by the keyring (as every datagram and push-pull frame is),
 * then mutated, truncated, replaced by random bytes, or sealed with a foreign key or cluster name.
 * Opening must never throw; an intact envelope opens to its plaintext; anything changed never opens.
 */
import { GossipSeal } from '../../../src/membership/seal.js';
import { generateKey, Keyring } from '../../../src/security/keyring.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';

export const sealedTarget: FuzzTarget = {
  name: 'gossip-sealed',
  feeds: 'mutated AES-GCM envelopes → GossipSeal.open',
  async setup() {
    const primary = generateKey();
    const old = generateKey();
    const ours = new GossipSeal(new Keyring([primary, old], primary), 'prod');
    const sealers = [
      { seal: ours, same: true },
      { seal: new GossipSeal(new Keyring([old], old), 'prod'), same: true }, // a node still on the old primary
      { seal: new GossipSeal(new Keyring([generateKey()]), 'prod'), same: false }, // a stranger's key
      { seal: new GossipSeal(new Keyring([primary], primary), 'staging'), same: false }, // another cluster
    ];
    return {
      runCase(rng) {
        const plaintext = rng.bytes(rng.int(1400));
        const sealer = sealers[rng.int(sealers.length)];
        const envelope = sealer.seal.seal(plaintext);
        const roll = rng.float();
        const bytes = roll < 0.2 ? envelope : roll < 0.3 ? rng.bytes(rng.int(1500)) : mutate(rng, envelope);
        const intact = bytes === envelope || bytes.equals(envelope);
        let opened;
        try {
          opened = ours.open(bytes, rng.chance(0.5) ? 'udp' : 'tcp');
        } catch (err) {
          throw new UnexpectedError(`open threw (it must never throw): ${String(err)}`);
        }
        if (intact && sealer.same) {
          if (!opened.ok) throw new InvariantError(`an intact envelope did not open: ${opened.reason}`);
          if (!opened.plaintext.equals(plaintext)) throw new InvariantError('an envelope opened to other bytes');
        } else if (opened.ok) {
          throw new InvariantError(intact ? 'an envelope of a foreign key or cluster opened' : 'a changed envelope opened');
        }
        return opened.ok ? 'accepted' : 'rejected';
      },
      async close() {},
    };
  },
};
