/**
 * Redis error replies: the fixed messages clients know, and the mapping of Shoal's error codes onto
 * Redis error prefixes that clients turn into their own error types (redis-py: READONLY → ReadOnlyError,
 * TRYAGAIN → TryAgainError, CLUSTERDOWN → ClusterDownError, NOAUTH/WRONGPASS → AuthenticationError).
 */
import { toShoalError } from '../errors.js';
import { ErrorReply } from './reply.js';

export function err(text: string): ErrorReply {
  return new ErrorReply(`ERR ${text}`);
}

export const SYNTAX = err('syntax error');
export const NOT_INTEGER = err('value is not an integer or out of range');
export const NOAUTH = new ErrorReply('NOAUTH Authentication required.');
export const WRONGPASS = new ErrorReply('WRONGPASS invalid username-password pair or user is disabled.');

export function arity(name: string): ErrorReply {
  return err(`wrong number of arguments for '${name}' command`);
}

export function invalidExpire(name: string): ErrorReply {
  return err(`invalid expire time in '${name}' command`);
}

/** A ShoalError (or anything thrown) as the Redis error a client should see. */
export function fromShoalError(thrown: unknown): ErrorReply {
  const e = toShoalError(thrown);
  switch (e.code) {
    case 'UNAVAILABLE':
      // Not enough replicas: what Redis Cluster calls the cluster being down for this slot.
      return new ErrorReply(`CLUSTERDOWN ${e.message}`);
    case 'TIMEOUT':
      return new ErrorReply(`TIMEOUT ${e.message}`);
    case 'READ_ONLY':
      return new ErrorReply(`READONLY ${e.message}`);
    case 'CLOSED':
      // Not processed (starting, leaving or stopping): safe to send to another node.
      return new ErrorReply(`TRYAGAIN ${e.message}; send it to another node`);
    case 'TOO_MANY_REQUESTS':
      return err(e.message);
    case 'KEY_TOO_LARGE':
    case 'VALUE_TOO_LARGE':
    case 'BAD_REQUEST':
      return err(e.message);
    default:
      return err(`${e.code}: ${e.message}`);
  }
}
