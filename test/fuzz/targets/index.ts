/** Every fuzz target, in the order `npm run fuzz` runs them. */
import type { FuzzTarget } from '../lib/harness.js';
import { configTarget } from './config.js';
import { framesTarget } from './frames.js';
import { gossipCoreTarget, gossipDecodeTarget } from './gossip.js';
import { rpcServerTarget } from './rpc-server.js';
import { sealedTarget } from './sealed.js';
import { snapshotTarget } from './snapshot.js';
import { walRecordTarget, walSegmentTarget } from './wal.js';

export const TARGETS: FuzzTarget[] = [
  framesTarget,
  rpcServerTarget,
  gossipDecodeTarget,
  gossipCoreTarget,
  sealedTarget,
  walRecordTarget,
  walSegmentTarget,
  snapshotTarget,
  configTarget,
];
