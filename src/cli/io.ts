/** Where a CLI run reads and writes: the process's streams, or buffers in tests. */
export interface CliOut {
  write(chunk: string | Buffer): unknown;
  isTTY?: boolean;
}

export interface CliIo {
  stdout: CliOut;
  stderr: CliOut;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
