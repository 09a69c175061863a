/** FrameDecoder alone: mutated streams of request frames, pushed in random splits. */
import { ShoalError } from '../../../src/errors.js';
import { FrameDecoder } from '../../../src/rpc/framing.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';
import { requestStream } from './inputs.js';

const FRAME_BYTES_MAX = 64 * 1024;

export const framesTarget: FuzzTarget = {
  name: 'frames',
  feeds: 'mutated request streams → FrameDecoder, random splits',
  async setup() {
    return {
      runCase(rng) {
        const valid = requestStream(rng);
        const intact = rng.chance(0.05);
        const donor = requestStream(rng).bytes;
        const bytes = intact ? valid.bytes : mutate(rng, valid.bytes, { lengthOffsets: valid.headers, donors: [donor] });
        const decoder = new FrameDecoder(FRAME_BYTES_MAX);
        let decoded = 0;
        try {
          for (let off = 0; off < bytes.length; ) {
            const cut = rng.chance(0.5) ? bytes.length : rng.range(1, 64);
            decoded += decoder.push(bytes.subarray(off, off + cut)).length;
            off += cut;
          }
        } catch (err) {
          if (err instanceof ShoalError && (err.code === 'BAD_REQUEST' || err.code === 'FRAME_TOO_LARGE')) return 'rejected';
          throw new UnexpectedError(`FrameDecoder threw ${String(err)}`);
        }
        if (decoder.pendingBytes > FRAME_BYTES_MAX + 4 + 64) throw new InvariantError(`decoder holds ${decoder.pendingBytes} bytes`);
        if (intact && (decoded !== valid.count || decoder.pendingBytes !== 0)) throw new InvariantError('an intact stream did not decode whole');
        return 'accepted';
      },
      async close() {},
    };
  },
};
