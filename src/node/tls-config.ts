/**
 * The node's TLS settings from the config's security section: the RPC server's options and the
 * node-to-node pool's (which always presents the node's certificate, so peers requiring client
 * certificates accept it). PEM files are read once, at start; a bad file is a CONFIG error naming it.
 */
import { loadServerTls, type RpcTlsClientOptions, type RpcTlsServerOptions } from '../rpc/tls.js';
import type { SecuritySection } from './config-schema.js';

export interface NodeTls {
  server: RpcTlsServerOptions;
  client: RpcTlsClientOptions;
}

/** null when security.tls is false (plaintext). */
export function nodeTls(security: SecuritySection): NodeTls | null {
  if (!security.tls) return null;
  const server = loadServerTls({ caFile: security.tlsCa, certFile: security.tlsCert, keyFile: security.tlsKey, clientAuth: security.tlsClientAuth });
  const client: RpcTlsClientOptions = { ca: server.ca, cert: server.cert, key: server.key };
  if (security.tlsServerName !== '') client.serverName = security.tlsServerName;
  return { server, client };
}
