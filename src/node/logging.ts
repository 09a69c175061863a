/**
 * The node's winston logger behind the Logger interface of src/log.ts. Two formats: `text`, one
 * human line per event (colored on a terminal), and `json`, one JSON object per line for log
 * shippers. Layers get child loggers (`logger.child({ layer: 'rpc' })`) whose fields go on every line.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';
import type { LogFields, Logger } from '../log.js';
import type { LogFormat, LogLevel } from './config-schema.js';

export interface NodeLoggerOptions {
  /** Lowest level written. Default 'info'. */
  level?: LogLevel;
  /** Default 'text'. */
  format?: LogFormat;
  /** Where lines go. Default process.stdout. */
  stream?: Writable & { isTTY?: boolean };
  /** Color the level in text lines. Default: whether the stream is a terminal. */
  colors?: boolean;
  /** Fields on every line, e.g. { node: 'n1' }. */
  fields?: LogFields;
}

export interface NodeLogger extends Logger {
  /** Flushes and detaches the transport. */
  close(): Promise<void>;
}

/** Errors become { message, code } so they survive JSON and read well in text. */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { message: value.message } : { message: value.message, code };
  }
  return value;
}

const plainErrors = winston.format((info) => {
  for (const key of Object.keys(info)) info[key] = plain(info[key]);
  return info;
});

const RESERVED = new Set(['level', 'message', 'timestamp', 'layer', 'node']);

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? String(value);
}

/** `2026-01-01T00:00:00.000Z info  n1 [rpc] listening addr=127.0.0.1:7201` */
export function formatTextLine(info: Record<string, unknown>, levelText = String(info.level)): string {
  const parts = [String(info.timestamp), levelText.padEnd(5)];
  if (info.node !== undefined) parts.push(String(info.node));
  if (info.layer !== undefined) parts.push(`[${String(info.layer)}]`);
  parts.push(String(info.message));
  for (const [key, value] of Object.entries(info)) {
    if (!RESERVED.has(key) && value !== undefined) parts.push(`${key}=${textValue(value)}`);
  }
  return parts.join(' ');
}

const COLORS: Record<string, string> = { error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[32m', debug: '\x1b[90m' };

function textFormat(colors: boolean) {
  return winston.format.printf((info) => {
    const level = String(info.level);
    const shown = colors && COLORS[level] ? `${COLORS[level]}${level.padEnd(5)}\x1b[0m` : level;
    return formatTextLine(info as Record<string, unknown>, shown);
  });
}

class WinstonAdapter implements NodeLogger {
  constructor(private readonly w: winston.Logger, private readonly root: winston.Logger) {}
  debug(message: string, fields?: LogFields): void {
    this.w.debug(message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.w.info(message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.w.warn(message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.w.error(message, fields);
  }
  child(fields: LogFields): NodeLogger {
    return new WinstonAdapter(this.w.child(fields), this.root);
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.root.writable === false) return resolve();
      this.root.once('finish', () => resolve());
      this.root.end();
    });
  }
}

export function createNodeLogger(options: NodeLoggerOptions = {}): NodeLogger {
  const stream = options.stream ?? process.stdout;
  const format = options.format ?? 'text';
  const colors = options.colors ?? stream.isTTY === true;
  const root = winston.createLogger({
    level: options.level ?? 'info',
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    defaultMeta: options.fields,
    format: winston.format.combine(
      winston.format.timestamp(),
      plainErrors(),
      format === 'json' ? winston.format.json() : textFormat(colors),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
  return new WinstonAdapter(root, root);
}
