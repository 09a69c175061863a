/**
 * Start-up warnings for a node that listens beyond loopback without protection: the RPC port
 * without TLS, the gossip port without a keyring. Pure functions of the config (and whether the
 * keyring file exists), so they are tested without binding anything but loopback.
 */
import { existsSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { keyringFilePath } from '../security/keyring-file.js';
import type { ShoalConfig } from './config-schema.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * True when `host` (as in a host:port setting, brackets allowed) can only be reached from this
 * machine: 127.0.0.0/8, ::1 (any spelling), ::ffff:127.x.x.x, or the name "localhost". Any other name
 * is treated as reachable from outside (it may resolve anywhere); 0.0.0.0 and :: mean every interface.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const family = isIP(h);
  if (family === 0) return false;
  return LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

function hostOf(addr: string): string {
  return addr.slice(0, addr.lastIndexOf(':'));
}

export interface ExposureWarning {
  /** Which port: 'rpc' or 'gossip'. */
  port: 'rpc' | 'gossip';
  address: string;
  message: string;
}

/**
 * One warning per port that binds beyond loopback unprotected. Gossip counts as protected when a
 * keyring file exists or security.gossipKey is set (it seeds the file on first start).
 */
export function exposureWarnings(config: ShoalConfig, keyringExists: (path: string) => boolean = existsSync): ExposureWarning[] {
  const out: ExposureWarning[] = [];
  const { rpc, gossip } = config.node;
  if (!config.security.tls && !isLoopbackHost(hostOf(rpc))) {
    out.push({
      port: 'rpc',
      address: rpc,
      message: `the RPC port ${rpc} is reachable beyond loopback without TLS: anyone who can connect can read, write and delete every key (set security.tls; docs/SECURITY.md)`,
    });
  }
  const keyed = config.security.gossipKey !== '' || keyringExists(keyringFilePath(resolvePath(config.node.dataDir), config.security.keyringFile));
  if (!keyed && !isLoopbackHost(hostOf(gossip))) {
    out.push({
      port: 'gossip',
      address: gossip,
      message: `the gossip port ${gossip} is reachable beyond loopback without a gossip keyring: anyone who can send to it can join or disturb the cluster (set security.gossipKey; docs/SECURITY.md)`,
    });
  }
  return out;
}
