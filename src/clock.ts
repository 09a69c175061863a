/**
 * The time and randomness seam. Every module that reads the time, arms a timer, defers work to the
 * next event-loop turn or draws a random number does it through a `Clock` given to it (default:
 * `systemClock`), never through `Date.now`, `setTimeout`, `setImmediate` or `Math.random` directly.
 * The whole-cluster simulator (src/sim/) gives each node a clock of its own on simulated time, with
 * drift and jumps, and a seeded random source, so a seed replays the same trace.
 */

/** A timer armed through a Clock. `unref` keeps a real timer from holding the process open. */
export interface ClockTimer {
  unref(): ClockTimer;
}

export interface Clock {
  /** Wall-clock milliseconds since the epoch (Date.now). May jump: never use it for durations. */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin (performance.now): for durations and deadlines. */
  monotonicMs(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer | null | undefined): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer | null | undefined): void;
  /** Runs `fn` on a later turn of the event loop, after pending I/O (setImmediate). */
  setImmediate(fn: () => void): ClockTimer;
  clearImmediate(timer: ClockTimer | null | undefined): void;
  /** Uniform in [0, 1) (Math.random); seeded in the simulator. */
  random(): number;
}

/** Resolves after `ms` on `clock`'s timers. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, ms);
  });
}

/** Resolves on the next turn of `clock`'s event loop (lets I/O and other work run). */
export function yieldTurn(clock: Clock): Promise<void> {
  return new Promise((resolve) => {
    clock.setImmediate(resolve);
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => {
    if (timer) clearTimeout(timer as NodeJS.Timeout);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (timer) => {
    if (timer) clearInterval(timer as NodeJS.Timeout);
  },
  setImmediate: (fn) => setImmediate(fn),
  clearImmediate: (timer) => {
    if (timer) clearImmediate(timer as NodeJS.Immediate);
  },
  random: () => Math.random(),
};
