/**
 * A DNS server for tests: Debian's dnsmasq on a free port of 127.0.0.1, answering only what it is
 * given (no upstream, no /etc/hosts). A records come from a hosts file that `setHosts` rewrites and
 * reloads with SIGHUP; SRV records are fixed per process (`restart` with new ones).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const HAVE_DNSMASQ = spawnSync('dnsmasq', ['--version'], { stdio: 'ignore' }).status === 0;

/** name → one IPv4 address or several (several A records). */
export type Hosts = Record<string, string | string[]>;

export interface SrvRecord {
  /** e.g. _shoal._udp.shoal.test */
  name: string;
  target: string;
  port: number;
}

/** A free UDP port on 127.0.0.1 (bound and released: good enough for a test on loopback). */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export class Dnsmasq {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'shoal-dnsmasq-'));
  private readonly hostsFile = join(this.dir, 'hosts');
  private log = '';

  private constructor(readonly port: number, private srv: SrvRecord[]) {}

  /** `hosts`: name → IPv4 address(es). */
  static async start(hosts: Hosts, srv: SrvRecord[] = []): Promise<Dnsmasq> {
    // The port is free for UDP when picked, but dnsmasq binds TCP on it too, and a test running beside
    // this one may hold that TCP port: pick another (bounded).
    for (let attempt = 1; ; attempt += 1) {
      const server = new Dnsmasq(await freeUdpPort(), srv);
      server.writeHosts(hosts);
      try {
        await server.spawn();
        return server;
      } catch (err) {
        await server.stop();
        if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err;
      }
    }
  }

  /** The server as membership.dnsServers takes it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Replaces the A records and makes dnsmasq read them again (SIGHUP); waits until it did. */
  async setHosts(hosts: Hosts): Promise<void> {
    this.writeHosts(hosts);
    const before = (this.log.match(/read .*hosts - /g) ?? []).length;
    this.child?.kill('SIGHUP');
    for (let i = 0; i < 100 && (this.log.match(/read .*hosts - /g) ?? []).length <= before; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Restarts with other SRV records (dnsmasq reads those only at start). */
  async restart(srv: SrvRecord[]): Promise<void> {
    await this.stopProcess();
    this.srv = srv;
    await this.spawn();
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private writeHosts(hosts: Hosts): void {
    const lines = Object.entries(hosts).flatMap(([name, ips]) => (Array.isArray(ips) ? ips : [ips]).map((ip) => `${ip} ${name}\n`));
    writeFileSync(this.hostsFile, lines.join(''));
  }

  private async spawn(): Promise<void> {
    const args = [
      '--no-daemon', '--conf-file=/dev/null', `--port=${this.port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', `--addn-hosts=${this.hostsFile}`, '--user=root', '--pid-file=', '--local-ttl=0',
      ...this.srv.map((r) => `--srv-host=${r.name},${r.target},${r.port}`),
    ];
    const child = spawn('dnsmasq', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    for (let i = 0; i < 100 && !/read .*hosts - /.test(this.log); i += 1) {
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!/read .*hosts - /.test(this.log)) {
      await this.stopProcess();
      throw new Error(`dnsmasq did not start: ${this.log}`);
    }
  }

  private async stopProcess(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
