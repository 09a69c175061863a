/**
 * The `keyring` operation (list, install, use, remove gossip keys across the cluster) and its
 * per-node half `internal.keyring`. The node that receives `keyring` asks every reachable member
 * (alive or suspect, itself included) over RPC and reports each node's answer; each node changes its
 * keyring, persists the file and only then acknowledges. Key material travels only in `install`;
 * answers carry key ids, never keys. Changes on one node are serialised, and a change whose file
 * write fails is undone in memory, so the file and the running keyring never disagree.
 */
import { ShoalError, toShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { type RpcArgs, optionalString, requireString } from '../rpc/protocol.js';
import { saveKeyring } from '../security/keyring-file.js';
import { type Keyring, keyId, keyIdOf, parseKey } from '../security/keyring.js';

export const KEYRING_ACTIONS = ['list', 'install', 'use', 'remove'] as const;
export type KeyringAction = (typeof KEYRING_ACTIONS)[number];

/** One node's keyring after an action: ids only. */
export interface NodeKeyring {
  node: string;
  primary: string;
  keys: string[];
}

export type NodeOutcome = ({ ok: true } & NodeKeyring) | { node: string; ok: false; error: { code: string; message: string } };

/** The answer of `keyring` (docs/PROTOCOL.md). */
export interface KeyringResult {
  action: KeyringAction;
  /** Nodes asked (alive and suspect members). */
  nodes: number;
  /** Nodes that answered ok. */
  ok: number;
  results: NodeOutcome[];
  /** Every key id some node holds, with how many nodes hold it and on how many it is primary. */
  keys: Array<{ id: string; nodes: number; primary: number }>;
  /** Dead or left members, not asked: they need the key in their keyring file before they can rejoin. */
  skipped: string[];
}

export interface KeyringOpsOptions {
  selfId: string;
  /** null: gossip encryption is off on this node; every keyring op is then refused. */
  keyring: Keyring | null;
  /** The keyring file every change is written to before it is acknowledged. */
  file: string;
  /** Every member this node knows, itself included. */
  members: () => Array<{ id: string; rpc: string; state: string }>;
  /** Calls `op` on the node at `rpc` (the node-to-node pool). */
  call: (rpc: string, op: string, args: RpcArgs) => Promise<unknown>;
  logger: Logger;
}

function badRequest(message: string): ShoalError {
  return new ShoalError('BAD_REQUEST', message);
}

function parseAction(args: RpcArgs): { action: KeyringAction; key: string | undefined } {
  const action = requireString(args, 'action');
  if (!(KEYRING_ACTIONS as readonly string[]).includes(action)) throw badRequest(`args.action must be one of ${KEYRING_ACTIONS.join(', ')}`);
  const key = optionalString(args, 'key');
  if (action !== 'list' && (key === undefined || key === '')) throw badRequest(`keyring ${action} needs args.key`);
  return { action: action as KeyringAction, key };
}

/** Keyring errors are CONFIG inside the node; on the wire they are bad requests of the caller. */
function asRequestError(err: unknown): ShoalError {
  const e = toShoalError(err);
  return e.code === 'CONFIG' ? badRequest(e.message) : e;
}

function asNodeKeyring(node: string, value: unknown): NodeKeyring {
  const v = value as Partial<NodeKeyring> | null;
  if (v === null || typeof v !== 'object' || typeof v.primary !== 'string' || !Array.isArray(v.keys) || !v.keys.every((k) => typeof k === 'string')) {
    throw new ShoalError('INTERNAL', `malformed internal.keyring answer from ${node}`);
  }
  return { node, primary: v.primary, keys: v.keys };
}

export class KeyringOps {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: KeyringOpsOptions) {}

  /** True for the ops this class answers. */
  handles(op: string): boolean {
    return op === 'keyring' || op === 'internal.keyring';
  }

  handle(op: string, args: RpcArgs): Promise<unknown> {
    return op === 'keyring' ? this.cluster(args) : this.local(args);
  }

  private requireKeyring(): Keyring {
    if (this.o.keyring === null) {
      throw badRequest(`gossip encryption is not enabled on node ${this.o.selfId} (no keyring file and no security.gossipKey)`);
    }
    return this.o.keyring;
  }

  /** `internal.keyring`: applies one action to this node's keyring and persists it. */
  private async local(args: RpcArgs): Promise<NodeKeyring> {
    const { action, key } = parseAction(args);
    const ring = this.requireKeyring();
    const run = async (): Promise<NodeKeyring> => {
      const undo = this.change(ring, action, key ?? '');
      if (undo !== null) {
        try {
          await saveKeyring(this.o.file, ring);
        } catch (err) {
          undo();
          this.o.logger.error('keyring change not persisted, undone', { action, error: (err as Error).message });
          throw err;
        }
        this.o.logger.info(`keyring ${action}`, { key: keyIdOf(key ?? ''), primary: ring.primaryId(), keys: ring.list().length });
      }
      return this.snapshot(ring);
    };
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => undefined);
    return result;
  }

  /** Applies the action in memory; returns how to undo it, or null when nothing changed. */
  private change(ring: Keyring, action: KeyringAction, key: string): (() => void) | null {
    try {
      switch (action) {
        case 'list':
          return null;
        case 'install': {
          if (ring.has(key)) return null;
          const id = ring.install(key);
          return () => ring.remove(id);
        }
        case 'use': {
          const previous = ring.primaryId();
          ring.use(key);
          return ring.primaryId() === previous ? null : () => ring.use(previous);
        }
        case 'remove': {
          if (!ring.has(key)) return null; // already gone: removing is idempotent
          const id = keyIdOf(key);
          const material = ring.exportKeys().keys.find((k) => keyId(Buffer.from(k, 'base64')) === id) as string;
          ring.remove(id);
          return () => ring.install(material);
        }
      }
    } catch (err) {
      throw asRequestError(err);
    }
  }

  private snapshot(ring: Keyring): NodeKeyring {
    return { node: this.o.selfId, primary: ring.primaryId(), keys: ring.list().map((k) => k.id) };
  }

  /** `keyring`: checks the action against every node's keyring, then fans it out. */
  private async cluster(args: RpcArgs): Promise<KeyringResult> {
    const { action, key } = parseAction(args);
    this.requireKeyring();
    let wireKey: string | undefined;
    try {
      // Only install needs the key itself; use and remove send the id.
      wireKey = key === undefined ? undefined : action === 'install' ? parseKey(key).toString('base64') : keyIdOf(key);
    } catch (err) {
      throw asRequestError(err);
    }
    if (action === 'use' || action === 'remove') {
      const id = wireKey as string;
      const before = await this.fanOut('list', undefined);
      if (action === 'use') {
        const lacking = before.results.filter((r) => !r.ok || !r.keys.includes(id)).map((r) => (r.ok ? r.node : `${r.node} (${r.error.message})`));
        if (lacking.length > 0) {
          throw badRequest(`keyring use: key ${id} is not installed on ${lacking.join(', ')}; install it on every node first (shoal keyring install)`);
        }
      } else {
        const primaryOn = before.results.filter((r) => r.ok && r.primary === id).map((r) => r.node);
        if (primaryOn.length > 0) {
          throw badRequest(`keyring remove: key ${id} is the primary key on ${primaryOn.join(', ')}; make another key primary first (shoal keyring use)`);
        }
      }
    }
    return this.fanOut(action, wireKey);
  }

  private async fanOut(action: KeyringAction, key: string | undefined): Promise<KeyringResult> {
    const members = this.o.members();
    const asked = members.filter((m) => m.id === this.o.selfId || m.state === 'alive' || m.state === 'suspect');
    const skipped = members.filter((m) => !asked.includes(m)).map((m) => m.id).sort();
    const args: RpcArgs = key === undefined ? { action } : { action, key };
    const results = await Promise.all(
      asked.map(async (m): Promise<NodeOutcome> => {
        try {
          const reply = m.id === this.o.selfId ? await this.local(args) : asNodeKeyring(m.id, await this.o.call(m.rpc, 'internal.keyring', args));
          return { ok: true, ...reply, node: m.id };
        } catch (err) {
          return { node: m.id, ok: false, error: toShoalError(err).toWire() };
        }
      }),
    );
    results.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    const keys = new Map<string, { id: string; nodes: number; primary: number }>();
    for (const r of results) {
      if (!r.ok) continue;
      for (const id of r.keys) {
        const k = keys.get(id) ?? { id, nodes: 0, primary: 0 };
        k.nodes += 1;
        if (r.primary === id) k.primary += 1;
        keys.set(id, k);
      }
    }
    const summary = [...keys.values()].sort((a, b) => b.primary - a.primary || b.nodes - a.nodes || (a.id < b.id ? -1 : 1));
    return { action, nodes: asked.length, ok: results.filter((r) => r.ok).length, results, keys: summary, skipped };
  }
}
