/** Helpers of the membership tests that run over real sockets. */
import dgram from 'node:dgram';

/** 127.0.0.<first + i> when this machine can bind it (Linux routes all of 127/8), else 127.0.0.1. */
export async function loopbackHost(first: number, i: number): Promise<string> {
  const host = `127.0.0.${first + i}`;
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port: 0 }, () => resolve());
    });
    return host;
  } catch {
    return '127.0.0.1';
  } finally {
    socket.close();
  }
}

/** Polls `condition` every 50 ms; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
