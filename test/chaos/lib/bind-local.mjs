// Preloaded into every chaos agent with `node --import` (through NODE_OPTIONS). On one host all
// loopback connections would leave from 127.0.0.1, so nftables could not tell which node sent a TCP
// packet. A real node has its own address; this gives each agent's outgoing TCP connections to
// 127.0.0.0/8 the agent's own loopback address as source (SHOAL_CHAOS_LOCAL_ADDRESS), so a rule on
// source and destination addresses cuts exactly one node off. Nothing else is changed.
import net from 'node:net';
import process from 'node:process';

const local = process.env.SHOAL_CHAOS_LOCAL_ADDRESS;
if (local) {
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function connectFromOwnAddress(...args) {
    const first = args[0];
    // net.connect() passes its normalized [options, callback] array; socket.connect(options) an object.
    const options = Array.isArray(first) ? first[0] : first;
    if (
      options !== null &&
      typeof options === 'object' &&
      options.path === undefined &&
      options.localAddress === undefined &&
      typeof options.host === 'string' &&
      options.host.startsWith('127.')
    ) {
      options.localAddress = local;
    }
    return connect.apply(this, args);
  };
}
