/**
 * Server CPU per operation, the bench figure that stays put on a shared machine: throughput here
 * varies by ±25% with whatever else runs, the CPU a server spends per request much less.
 *
 * `cpuMicros(pids)` reads utime + stime of each process (and of its threads, which /proc/PID/stat
 * already sums) from /proc, in microseconds. Take it before and after a phase; the difference over
 * the phase's operation count is the server's CPU per operation. Linux only: elsewhere it returns
 * null and the benches print '-'.
 *
 * `loadAverage()` is recorded beside every run, so a reader can tell a quiet run from a busy one.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** USER_HZ: the kernel reports utime/stime in these ticks; 100 on every Linux Node supports. */
const CLOCK_TICKS_PER_SEC = 100;

/** utime + stime of one process in µs, or null when it has gone or /proc is missing. */
function processCpuMicros(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1e6) / CLOCK_TICKS_PER_SEC;
}

/** The summed CPU time of `pids` in µs; null if any of them cannot be read. */
export function cpuMicros(pids: ReadonlyArray<number | undefined>): number | null {
  let total = 0;
  for (const pid of pids) {
    if (pid === undefined) return null;
    const micros = processCpuMicros(pid);
    if (micros === null) return null;
    total += micros;
  }
  return total;
}

/** CPU µs per operation between two cpuMicros() readings, rounded to 0.1 µs; null if unknown. */
export function microsPerOp(before: number | null, after: number | null, ops: number): number | null {
  if (before === null || after === null || ops <= 0) return null;
  return Math.round(((after - before) / ops) * 10) / 10;
}

/** The 1, 5 and 15 minute load averages, two decimals. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = loadavg().map((x) => Math.round(x * 100) / 100);
  return [a, b, c];
}
