/**
 * The node's HTTP endpoint: GET /metrics (Prometheus text format), GET /health (JSON; 200 when the
 * node serves, 503 while it starts or stops), and the status page: GET / (one self-contained HTML
 * page, status-page.ts) and GET /status.json (what it draws). Every other path is 404.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { NodeMetrics } from './metrics.js';
import { STATUS_PAGE_HTML } from './status-page.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  metrics: NodeMetrics;
  /** The /health body; `ok: false` answers 503. */
  health: () => { ok: boolean } & Record<string, unknown>;
  /** The status page's data (GET /status.json); without it, / and /status.json are 404. */
  status?: () => Promise<Record<string, unknown>>;
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
    } else if ((path === '/' || path === '/index.html') && options.status) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'" }).end(STATUS_PAGE_HTML);
    } else if (path === '/status.json' && options.status) {
      options.status().then(
        (body) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body) + '\n'),
        (err: unknown) => {
          logger.warn('status snapshot failed', { err });
          res.writeHead(500, { 'content-type': 'text/plain' }).end('status unavailable\n');
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /metrics, /health or /status.json\n');
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
