/**
 * TLS for the RPC port, in one place: reading the PEM files (CONFIG errors name the file), the
 * options the server and the client hand to node:tls, and one-line reasons for handshake failures.
 * TLS sits below the framing: the same frames flow over a TLS socket as over a TCP one.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { ShoalError } from '../errors.js';

/** What a server needs: its certificate and key, and the CA clients' certificates must chain to. */
export interface RpcTlsServerOptions {
  /** PEM: the CA (several concatenated CAs are all trusted, for rotation). */
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Mutual TLS: a client without a certificate signed by `ca` is refused. Default false. */
  clientAuth?: boolean;
}

/** What a client needs: the CA server certificates must chain to; its own certificate for mutual TLS. */
export interface RpcTlsClientOptions {
  ca: Buffer;
  /** Presented when the server asks (mutual TLS); both or neither. */
  cert?: Buffer;
  key?: Buffer;
  /** Name checked in the server's certificate; default the host connected to (a name or an IP). */
  serverName?: string;
}

/** PEM file paths, as in the config (security.tlsCa / tlsCert / tlsKey) or on the command line. */
export interface TlsFiles {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

/** PEM files are small; a bigger one is a wrong path (a log, a data file), not a certificate. */
const PEM_FILE_BYTES_MAX = 1024 * 1024;

/** A connection's first byte when the peer starts a TLS handshake (record type 22). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** A TLS alert record (type 21), what a TLS server sends a client it cannot talk to. */
const TLS_ALERT_RECORD = 0x15;

function readPem(path: string, what: string, marker: RegExp): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ShoalError('CONFIG', `cannot read the TLS ${what} file ${path}: ${reason}`, { file: path });
  }
  if (bytes.length > PEM_FILE_BYTES_MAX) {
    throw new ShoalError('CONFIG', `the TLS ${what} file ${path} is over ${PEM_FILE_BYTES_MAX} bytes: not a PEM file`, { file: path });
  }
  if (!marker.test(bytes.toString('latin1'))) {
    throw new ShoalError('CONFIG', `the TLS ${what} file ${path} holds no PEM ${what === 'key' ? 'private key' : 'certificate'}`, { file: path });
  }
  return bytes;
}

const CERT_MARKER = /-----BEGIN CERTIFICATE-----/;
const KEY_MARKER = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/** Reads and checks the files: PEM content, cert and key given together and matching. */
export function readTlsFiles(files: TlsFiles): { ca: Buffer; cert?: Buffer; key?: Buffer } {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new ShoalError('CONFIG', 'a TLS certificate needs its key and a key its certificate: give both or neither');
  }
  const ca = readPem(files.caFile, 'CA', CERT_MARKER);
  if (files.certFile === undefined || files.keyFile === undefined) return { ca };
  const cert = readPem(files.certFile, 'certificate', CERT_MARKER);
  const key = readPem(files.keyFile, 'key', KEY_MARKER);
  try {
    createSecureContext({ ca, cert, key });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' ? 'the key does not match the certificate' : (err as Error).message;
    throw new ShoalError('CONFIG', `TLS certificate ${files.certFile} with key ${files.keyFile}: ${reason}`, { file: files.certFile });
  }
  return { ca, cert, key };
}

/** Server options from files; the certificate and key are required. */
export function loadServerTls(files: Required<TlsFiles> & { clientAuth?: boolean }): RpcTlsServerOptions {
  const { ca, cert, key } = readTlsFiles(files);
  if (cert === undefined || key === undefined) throw new ShoalError('CONFIG', 'a TLS server needs a certificate and a key');
  return { ca, cert, key, clientAuth: files.clientAuth ?? false };
}

/** Client options from files; the certificate and key are optional (mutual TLS). */
export function loadClientTls(files: TlsFiles & { serverName?: string }): RpcTlsClientOptions {
  const out: RpcTlsClientOptions = readTlsFiles(files);
  if (files.serverName !== undefined && files.serverName !== '') out.serverName = files.serverName;
  return out;
}

/** node:tls connect options for `host:port` under `options`. */
export function clientConnectOptions(host: string, port: number, options: RpcTlsClientOptions): ConnectionOptions {
  const name = options.serverName;
  const out: ConnectionOptions = { host, port, ca: options.ca };
  if (options.cert !== undefined) out.cert = options.cert;
  if (options.key !== undefined) out.key = options.key;
  // SNI carries host names only; an IP (connected to, or configured) is checked but not sent.
  if (name !== undefined) {
    if (isIP(name) === 0) out.servername = name;
    out.checkServerIdentity = (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert);
  } else if (isIP(host) === 0) {
    out.servername = host;
  }
  return out;
}

const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/** Errors that mean the other end does not speak TLS on this port. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LAYER_FAILURE']);

/**
 * node reports some OpenSSL failures as EPROTO with OpenSSL's text ("...:SSL routines:func:wrong
 * version number:file:line"); this turns the reason into the ERR_SSL_* code node uses elsewhere.
 */
function opensslCode(message: string): string | null {
  const m = /error:[0-9A-Fa-f]+:SSL routines:[^:]*:([a-z0-9 ]+):/.exec(message);
  return m ? `ERR_SSL_${m[1].trim().toUpperCase().replace(/ /g, '_')}` : null;
}

/**
 * One line saying why a TLS handshake failed, in the words an operator needs (seen from either end:
 * `side` is who we are). Unknown errors keep node's message.
 */
export function tlsFailureReason(err: unknown, side: 'client' | 'server'): string {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = (e.code === 'EPROTO' ? opensslCode(e.message) : null) ?? e.code ?? '';
  if (UNKNOWN_AUTHORITY.has(code)) return `certificate signed by unknown authority (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `certificate name mismatch: ${e.reason ?? e.message}`;
  if (code === 'CERT_HAS_EXPIRED') return 'certificate has expired';
  if (code === 'CERT_NOT_YET_VALID') return 'certificate is not yet valid';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake timed out';
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return 'the server requires a client certificate';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'the client sent no certificate';
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA') return `the ${side === 'client' ? 'server' : 'client'} does not trust our certificate (unknown authority)`;
  if (code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') return 'the other end refused the handshake (no common cipher, or it has no certificate)';
  if (code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE') return `the ${side === 'client' ? 'server' : 'client'} refused our certificate`;
  if (NOT_TLS.has(code)) return `the ${side === 'client' ? 'server' : 'client'} does not speak TLS (plaintext on this port?)`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was reset during the handshake';
  return e.message;
}

/** True when a plaintext client's first bytes from the server look like a TLS record (alert or handshake). */
export function looksLikeTls(chunk: Buffer): boolean {
  return chunk.length >= 2 && (chunk[0] === TLS_ALERT_RECORD || chunk[0] === TLS_HANDSHAKE_RECORD) && chunk[1] === 0x03;
}
