/** What the background tasks of one node (streaming, anti-entropy) share. */
import type { BackgroundTasks } from '../background.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Entry, Store } from '../storage/types.js';
import type { ClusterConfig } from './config.js';
import type { ClusterMetrics, RingFactory, Transport } from './ports.js';
import type { ClusterView } from './view.js';

export interface NodeContext {
  config: ClusterConfig;
  view: ClusterView;
  store: Store;
  transport: Transport;
  ringFactory: RingFactory;
  /** Applies one entry received from a peer (HLC observe, then last-writer-wins in the store). */
  apply: (key: string, entry: Entry) => Promise<boolean>;
  logger: Logger;
  metrics?: ClusterMetrics;
  /** Runs the timers' work (rounds) so that a failure is caught, logged and counted, and close() waits. */
  tasks: BackgroundTasks;
  /** The node's time, timers and randomness (systemClock, or a simulated node's clock). */
  clock: Clock;
}
