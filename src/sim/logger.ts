/**
 * The simulator's logger: every line of every node goes to a bounded ring buffer per node (the "last
 * events per node" a failing seed prints) and, as one short line, into the trace whose hash proves that
 * a seed replays byte for byte.
 */
import type { Logger, LogFields } from '../log.js';

export interface TraceSink {
  line(text: string): void;
}

export class NodeLog {
  private readonly lines: string[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  push(line: string): void {
    if (this.lines.length < this.capacity) this.lines.push(line);
    else {
      this.lines[this.next] = line;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  last(): string[] {
    return [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)];
  }
}

function brief(fields: LogFields | undefined): string {
  if (fields === undefined) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'layer') continue;
    let text: string;
    if (v instanceof Error) text = `${(v as { code?: string }).code ?? v.name}: ${v.message}`;
    else if (typeof v === 'object' && v !== null) {
      try {
        text = JSON.stringify(v, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
      } catch {
        text = '[object]';
      }
    } else text = String(v);
    parts.push(`${k}=${text.length > 160 ? `${text.slice(0, 160)}…` : text}`);
  }
  return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
}

/** A Logger for node `id`: lines at info and above are kept (debug is dropped: it is too chatty). */
export function simLogger(id: string, time: () => number, log: NodeLog, trace: TraceSink, base: LogFields = {}): Logger {
  const write = (level: string, message: string, fields?: LogFields) => {
    const layer = (fields?.layer ?? base.layer) as string | undefined;
    const line = `${time().toFixed(1)} ${id} ${level}${layer === undefined ? '' : ` [${layer}]`} ${message}${brief(fields)}`;
    log.push(line);
    trace.line(line);
  };
  return {
    debug() {},
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => simLogger(id, time, log, trace, { ...base, ...fields }),
  };
}
