/**
 * The DNS seam of seed resolution (seeds.ts): `SeedDns` answers the lookups a host-name or `srv:` seed
 * needs. The default, `nodeSeedDns`, is node:dns (getaddrinfo for host names without configured
 * servers, so /etc/hosts applies; a Resolver on the configured servers otherwise). The simulator gives
 * its own, or none at all: plain `ip:port` seeds never reach this seam. This is the only file of
 * src/membership/ that touches node:dns (eslint.config.js keeps it so).
 */
import dns from 'node:dns';

export interface SeedSrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** Queries on one set of DNS servers. */
export interface SeedDnsResolver {
  resolve4(host: string): Promise<string[]>;
  resolve6(host: string): Promise<string[]>;
  resolveSrv(name: string): Promise<SeedSrvRecord[]>;
}

export interface SeedDns {
  /** Every address of a host name through the system's resolver (getaddrinfo: /etc/hosts applies). */
  lookup(host: string): Promise<string[]>;
  /** A resolver on `servers` (`ip` or `ip:port`; empty = the system's), each query bounded by `queryTimeoutMs`, tried once. */
  resolver(servers: string[], queryTimeoutMs: number): SeedDnsResolver;
}

export const nodeSeedDns: SeedDns = {
  async lookup(host) {
    const found = await dns.promises.lookup(host, { all: true, verbatim: true });
    return found.map((a) => a.address);
  },
  resolver(servers, queryTimeoutMs) {
    const resolver = new dns.promises.Resolver({ timeout: queryTimeoutMs, tries: 1 });
    if (servers.length > 0) resolver.setServers(servers);
    return resolver;
  },
};
