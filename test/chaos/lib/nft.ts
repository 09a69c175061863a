/**
 * Network faults with nftables, in a table of the harness' own (`inet shoal_chaos_<pid>`): created
 * at the start, its chain flushed to heal, and the table deleted on every exit path (normal end,
 * error, SIGINT/SIGTERM through the process 'exit' hook). Tables left by a harness that was killed
 * with SIGKILL are deleted by the next run (their pid is gone).
 *
 * Rules match source and destination addresses of the nodes only (each agent has its own 127.0.0.x
 * and its outgoing TCP leaves from it, see bind-local.mjs), so the harness' clients, which connect
 * from 127.0.0.1, still reach every node: a partition is between nodes, not between the clients
 * and the cluster.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const TABLE_PREFIX = 'shoal_chaos_';
const CHAIN = 'faults';

export type FirewallStatus = { available: true } | { available: false; reason: string };

/**
 * The system's nft. Looked up on PATH skipping node_modules/.bin: npm scripts put it first, and an
 * npm package (@vercel/nft, a file tracer) installs a binary of the same name there.
 */
function nftBinary(): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '' && !d.includes('node_modules'));
  for (const dir of [...dirs, '/usr/sbin', '/sbin']) {
    if (existsSync(join(dir, 'nft'))) return join(dir, 'nft');
  }
  return null;
}

function nft(args: string[], input?: string): string {
  const bin = nftBinary();
  if (bin === null) throw new Error('nft not found');
  return execFileSync(bin, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
}

function set(ips: readonly string[]): string {
  return `{ ${ips.join(', ')} }`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Can this process use nftables? (root and a working `nft`) */
export function firewallStatus(): FirewallStatus {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { available: false, reason: 'not running as root (partitions need nftables rules)' };
  }
  try {
    nft(['--version']);
  } catch {
    return { available: false, reason: '`nft` not found (apt-get install nftables; .ci/run does it)' };
  }
  try {
    nft(['list', 'tables']);
  } catch (err) {
    return { available: false, reason: `nft cannot list tables: ${(err as Error).message.split('\n')[0]}` };
  }
  return { available: true };
}

export class Firewall {
  readonly table: string;
  private closed = false;
  private readonly onExit = () => this.close();

  private constructor(table: string) {
    this.table = table;
  }

  /** Creates the harness' table (after deleting tables of dead harnesses). Throws if nft fails. */
  static open(): Firewall {
    Firewall.deleteStale();
    const fw = new Firewall(`${TABLE_PREFIX}${process.pid}`);
    nft(['-f', '-'], [
      `table inet ${fw.table} {`,
      `  chain ${CHAIN} { type filter hook input priority -10; policy accept; }`,
      `}`,
    ].join('\n'));
    process.on('exit', fw.onExit);
    return fw;
  }

  static deleteStale(): void {
    let listing: string;
    try {
      listing = nft(['list', 'tables']);
    } catch {
      return;
    }
    for (const m of listing.matchAll(new RegExp(`table inet (${TABLE_PREFIX}(\\d+))`, 'g'))) {
      if (Number(m[2]) === process.pid || pidAlive(Number(m[2]))) continue;
      try {
        nft(['delete', 'table', 'inet', m[1]]);
      } catch {
        // Another harness deleted it first.
      }
    }
  }

  private rules(lines: string[]): void {
    nft(['-f', '-'], lines.map((l) => `add rule inet ${this.table} ${CHAIN} ${l}`).join('\n'));
  }

  /** Drops everything between `ip` and the other nodes, both ways. */
  isolate(ip: string, others: readonly string[]): void {
    this.rules([`ip saddr ${ip} ip daddr ${set(others)} drop`, `ip saddr ${set(others)} ip daddr ${ip} drop`]);
  }

  /** Drops everything between the two sides. */
  split(sideA: readonly string[], sideB: readonly string[]): void {
    this.rules([`ip saddr ${set(sideA)} ip daddr ${set(sideB)} drop`, `ip saddr ${set(sideB)} ip daddr ${set(sideA)} drop`]);
  }

  /** Drops what `ip` sends to the others; it still hears them (UDP gossip is truly one-way). */
  oneWay(ip: string, others: readonly string[]): void {
    this.rules([`ip saddr ${ip} ip daddr ${set(others)} drop`]);
  }

  heal(): void {
    if (!this.closed) nft(['flush', 'chain', 'inet', this.table, CHAIN]);
  }

  /** Rules currently in force (for the run log). */
  listing(): string {
    return nft(['list', 'table', 'inet', this.table]);
  }

  /** Deletes the table; safe to call more than once and from an exit hook (synchronous). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.onExit);
    try {
      nft(['delete', 'table', 'inet', this.table]);
    } catch {
      // Already gone.
    }
  }
}
