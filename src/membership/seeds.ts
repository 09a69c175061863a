/**
 * Seeds: the addresses a node joins through, written in the config as one of
 *
 *   - `10.0.0.11:7101` or `[fd00::11]:7101`  an IP address and gossip port, used as is;
 *   - `shoal-0.shoal:7101`                   a host name: every A and AAAA address, with that port;
 *   - `srv:_shoal._udp.shoal.default.svc`    an SRV name: every target of every record, resolved to
 *                                            its A/AAAA addresses, with the record's port.
 *
 * The one entry point is
 *
 *   resolveSeeds(seeds: string[], options?: ResolveSeedsOptions): Promise<string[]>
 *
 * which returns the gossip addresses (`ip:port`, IPv6 bracketed) of all seeds, deduplicated in the
 * order given, without the node's own addresses (`options.self`). It never throws for a name that does
 * not resolve: that seed contributes nothing and `options.onError(seed, error)` is told (a seed may
 * be down, or its DNS record not published yet; the caller retries). A malformed seed is a CONFIG
 * error at parse time (`parseSeed`), checked when the config is loaded.
 *
 * Names are resolved on every call: callers call it on every join attempt and periodically, so a
 * changed DNS answer (a rescheduled pod, a replaced machine) is used on the next attempt.
 * `options.dnsServers` (`ip` or `ip:port`) selects the DNS servers; empty means the system's: host
 * names through getaddrinfo (so /etc/hosts applies, as for any program), SRV through /etc/resolv.conf.
 * `options.dns` replaces node:dns (dns.ts) and `options.clock` the timers of the timeout: the simulator
 * passes its own. Plain `ip:port` seeds never reach either (no DNS, no timer).
 */
import assert from 'node:assert/strict';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import os from 'node:os';
import { type Clock, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import { type SeedDns, type SeedDnsResolver, nodeSeedDns } from './dns.js';

export type SeedSpec =
  | { kind: 'address'; host: string; port: number; text: string }
  | { kind: 'name'; host: string; port: number; text: string }
  | { kind: 'srv'; name: string; text: string };

export interface ResolveSeedsOptions {
  /** Our own gossip addresses (`ip:port`): dropped from the result. */
  self?: string[];
  /** DNS servers, `ip` or `ip:port` (e.g. `127.0.0.1:5353`); empty or absent = the system's. */
  dnsServers?: string[];
  /** Bound on one seed's resolution (all its queries); default 5000 ms. */
  timeoutMs?: number;
  /** Told about each seed that resolved to nothing or failed (the others are still returned). */
  onError?: (seed: string, error: ShoalError) => void;
  /** The DNS queries (default node:dns, dns.ts). */
  dns?: SeedDns;
  /** Timers of the per-seed bound (default the system's). */
  clock?: Clock;
}

export const SRV_PREFIX = 'srv:';
/** Addresses taken from one name (A + AAAA, or all SRV targets), so a huge answer cannot flood the join. */
export const SEED_ADDRESSES_PER_NAME_MAX = 64;
/** Addresses returned in all. */
export const SEED_ADDRESSES_MAX = 256;
const RESOLVE_TIMEOUT_MS_DEFAULT = 5000;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/;

/** Parses one seed; a malformed one is a CONFIG error naming it. */
export function parseSeed(text: string): SeedSpec {
  if (text.startsWith(SRV_PREFIX)) {
    const name = text.slice(SRV_PREFIX.length);
    if (!DNS_NAME.test(name) || !name.includes('.')) {
      throw new ShoalError('CONFIG', `seed "${text}": srv: must be followed by a DNS name such as _shoal._udp.shoal.default.svc.cluster.local`);
    }
    return { kind: 'srv', name, text };
  }
  const match = /^(\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  if (match === null) throw new ShoalError('CONFIG', `seed "${text}": must be host:port, [ipv6]:port or srv:NAME`);
  const port = Number(match[4]);
  if (port < 1 || port > 65_535) throw new ShoalError('CONFIG', `seed "${text}": port must be from 1 to 65535`);
  if (match[2] !== undefined) {
    if (!isIPv6(match[2])) throw new ShoalError('CONFIG', `seed "${text}": ${match[2]} is not an IPv6 address`);
    return { kind: 'address', host: match[2], port, text };
  }
  const host = match[3];
  if (isIPv4(host)) return { kind: 'address', host, port, text };
  if (!DNS_NAME.test(host)) throw new ShoalError('CONFIG', `seed "${text}": ${host} is neither an IP address nor a host name`);
  return { kind: 'name', host, port, text };
}

/** Checks a DNS server as node:dns's setServers takes it: `ip`, `ip:port` or `[ipv6]:port`; a CONFIG error otherwise. */
export function parseDnsServer(text: string): { ip: string; port: number } {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/.exec(text);
  const v4 = /^([0-9.]+)(?::([0-9]{1,5}))?$/.exec(text);
  const ip = bracketed?.[1] ?? v4?.[1] ?? text;
  const port = Number(bracketed?.[2] ?? v4?.[2] ?? 53);
  if (isIP(ip) === 0 || (v4 !== null && !isIPv4(ip))) {
    throw new ShoalError('CONFIG', `DNS server "${text}": must be an IP address, optionally with :port ([ipv6]:port)`);
  }
  if (port < 1 || port > 65_535) throw new ShoalError('CONFIG', `DNS server "${text}": port must be from 1 to 65535`);
  return { ip, port };
}

/** True when some seed needs DNS (a host name or srv:), i.e. its addresses may change between calls. */
export function seedsNeedDns(seeds: string[]): boolean {
  return seeds.some((seed) => parseSeed(seed).kind !== 'address');
}

/** `ip:port`, with brackets around an IPv6 address. */
export function formatSeedAddress(ip: string, port: number): string {
  return isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The addresses that are this node, for `ResolveSeedsOptions.self`: its advertised gossip address and,
 * when it binds a wildcard (0.0.0.0, ::), every local interface address with its gossip port (one
 * DNS name may list every node, this one included, under an address it does not advertise).
 */
export function ownGossipAddresses(
  gossip: string, bindHost: string, port: number, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces(),
): string[] {
  const out = [gossip];
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    for (const list of Object.values(interfaces)) {
      for (const entry of list ?? []) out.push(formatSeedAddress(entry.address, port));
    }
  }
  return out;
}

/** The seeds' gossip addresses, resolved now (see the file header). */
export async function resolveSeeds(seeds: string[], options: ResolveSeedsOptions = {}): Promise<string[]> {
  const specs = seeds.map(parseSeed);
  const timeoutMs = options.timeoutMs ?? RESOLVE_TIMEOUT_MS_DEFAULT;
  const servers = options.dnsServers ?? [];
  const seedDns = options.dns ?? nodeSeedDns;
  let resolver: SeedDnsResolver | null = null;
  if (servers.length > 0 || specs.some((s) => s.kind === 'srv')) {
    // One query is retried once inside the per-seed bound.
    resolver = seedDns.resolver(servers, Math.max(1, Math.floor(timeoutMs / 2)));
  }
  const results = await Promise.all(specs.map(async (spec) => {
    if (spec.kind === 'address') return [formatSeedAddress(spec.host, spec.port)];
    try {
      const found = await withTimeout(resolveSpec(spec, resolver, seedDns), timeoutMs, spec.text, options.clock ?? systemClock);
      if (found.length === 0) throw new ShoalError('UNAVAILABLE', `seed ${spec.text} resolved to no address`);
      return found;
    } catch (err) {
      options.onError?.(spec.text, dnsError(spec.text, err));
      return [];
    }
  }));
  const self = new Set(options.self ?? []);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const address of results.flat()) {
    if (self.has(address) || seen.has(address)) continue;
    seen.add(address);
    out.push(address);
    if (out.length >= SEED_ADDRESSES_MAX) break;
  }
  assert.ok(out.length <= SEED_ADDRESSES_MAX && out.every((a) => !self.has(a)), 'resolveSeeds: bounded and without ourselves');
  return out;
}

async function resolveSpec(spec: SeedSpec, resolver: SeedDnsResolver | null, seedDns: SeedDns): Promise<string[]> {
  if (spec.kind === 'address') return [formatSeedAddress(spec.host, spec.port)];
  if (spec.kind === 'name') {
    return (await resolveHost(spec.host, resolver, seedDns)).map((ip) => formatSeedAddress(ip, spec.port));
  }
  if (resolver === null) throw new ShoalError('INTERNAL', 'srv seeds need a resolver');
  const records = (await resolver.resolveSrv(spec.name))
    .sort((a, b) => a.priority - b.priority || b.weight - a.weight)
    .slice(0, SEED_ADDRESSES_PER_NAME_MAX);
  const perTarget = await Promise.all(records.map(async (record) => {
    const target = record.name.replace(/\.$/, '');
    // A target may be an address literal (some servers answer so); otherwise resolve it.
    const ips = isIP(target) !== 0 ? [target] : await resolveHost(target, resolver, seedDns).catch(() => [] as string[]);
    return ips.map((ip) => formatSeedAddress(ip, record.port));
  }));
  return perTarget.flat().slice(0, SEED_ADDRESSES_PER_NAME_MAX);
}

/** A and AAAA addresses of a host name: through the configured servers, or getaddrinfo without them. */
async function resolveHost(host: string, resolver: SeedDnsResolver | null, seedDns: SeedDns): Promise<string[]> {
  if (resolver === null) return (await seedDns.lookup(host)).slice(0, SEED_ADDRESSES_PER_NAME_MAX);
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  if (ips.length === 0 && v4.status === 'rejected') throw v4.reason;
  return ips.slice(0, SEED_ADDRESSES_PER_NAME_MAX);
}

function dnsError(seed: string, err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
  return new ShoalError('UNAVAILABLE', `seed ${seed} did not resolve: ${code} (${(err as Error).message})`);
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, seed: string, clock: Clock): Promise<T> {
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new ShoalError('TIMEOUT', `seed ${seed} did not resolve within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}
