/**
 * The node's HTTP endpoint: GET /metrics (Prometheus text format) and GET /health (JSON; 200 when
 * the node serves, 503 while it starts or stops). Nothing else; every other path is 404.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { NodeMetrics } from './metrics.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  metrics: NodeMetrics;
  /** The /health body; `ok: false` answers 503. */
  health: () => { ok: boolean } & Record<string, unknown>;
  logger?: Logger;
}

export interface MetricsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const logger = options.logger ?? nullLogger;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      options.metrics.render().then(
        (text) => res.writeHead(200, { 'content-type': options.metrics.contentType }).end(text),
        (err: unknown) => {
          logger.warn('metrics scrape failed', { err });
          res.writeHead(500).end();
        },
      );
    } else if (path === '/health') {
      const body = options.health();
      res.writeHead(body.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /health\n');
    }
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
