import test from 'ava';
import { DEFAULT_CLUSTER_CONFIG, requiredReplies, resolveClusterConfig } from '../../src/cluster/config.js';
import { ShoalError } from '../../src/errors.js';

test('defaults: N=3, W=2, R=2, tombstones outlive hints and dead owners', (t) => {
  const c = resolveClusterConfig();
  t.deepEqual([c.replicationFactor, c.writeQuorum, c.readQuorum], [3, 2, 2]);
  t.true(c.tombstoneGraceMs > (c.hintTtlMs ?? 0) && c.tombstoneGraceMs > c.deadOwnerGraceMs);
  t.truthy(c.hintTtlMs);
  t.not(resolveClusterConfig(), DEFAULT_CLUSTER_CONFIG);
});

test('bad values are CONFIG errors that say why', (t) => {
  const e1 = t.throws(() => resolveClusterConfig({ writeQuorum: 4 }));
  t.is((e1 as ShoalError).code, 'CONFIG');
  const e2 = t.throws(() => resolveClusterConfig({ tombstoneGraceMs: 1000, deadOwnerGraceMs: 5000 }));
  t.regex(e2?.message ?? '', /bring deleted keys back/);
  t.throws(() => resolveClusterConfig({ replicationFactor: 0 }));
  t.throws(() => resolveClusterConfig({ vnodes: 1.5 }));
});

test('consistency levels map to reply counts, clamped to the replicas there are', (t) => {
  t.is(requiredReplies('one', 2, 3), 1);
  t.is(requiredReplies('quorum', 2, 3), 2);
  t.is(requiredReplies('all', 2, 3), 3);
  t.is(requiredReplies(undefined, 2, 3), 2);
  t.is(requiredReplies(undefined, 2, 1), 1, 'W=2 on a one-node cluster is 1');
  t.is(requiredReplies('quorum', 2, 5), 3);
  t.is(requiredReplies('all', 2, 2), 2);
});
