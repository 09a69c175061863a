/** Human-readable rendering for the CLI: aligned tables and indented key/value trees. */

/** Left-aligned columns separated by two spaces; the header row first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (typeof value === 'string') return value;
  return String(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** An object as indented `key: value` lines, nested objects indented under their key. */
export function tree(value: unknown, indent = ''): string {
  if (!isRecord(value) && !Array.isArray(value)) return `${indent}${scalar(value)}\n`;
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  let out = '';
  for (const [key, child] of entries) {
    const nested = (isRecord(child) && Object.keys(child).length > 0) || (Array.isArray(child) && child.length > 0 && child.some((c) => typeof c === 'object' && c !== null));
    if (nested) out += `${indent}${key}:\n${tree(child, indent + '  ')}`;
    else if (Array.isArray(child)) out += `${indent}${key}: ${child.length === 0 ? '[]' : child.map(scalar).join(', ')}\n`;
    else if (isRecord(child)) out += `${indent}${key}: {}\n`;
    else out += `${indent}${key}: ${scalar(child)}\n`;
  }
  return out;
}

/** JSON for --json: Buffers as UTF-8 text when valid, else base64 under `<key>Base64`. */
export function toJson(value: unknown): string {
  return JSON.stringify(jsonSafe(value), null, 2) + '\n';
}

export function isUtf8(buf: Buffer): boolean {
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}

function jsonSafe(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return isUtf8(value) ? value.toString('utf8') : { base64: value.toString('base64') };
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}

/** "3d 4h", "12m 5s", "850ms". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = s;
  for (const [name, size] of units) {
    if (rest >= size || (parts.length === 0 && size === 1)) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** "512 B", "1.5 KiB", "12.3 MiB", "2.1 GiB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 ? Math.round(value) : Math.round(value * 10) / 10} ${units[unit]}`;
}

/** A share 0..1 as the percentage the tables show, e.g. 0.3412 → 34.1 (the JSON carries the same number). */
export function percent(share: number): number {
  return Math.round(share * 1000) / 10;
}
