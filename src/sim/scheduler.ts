/**
 * Simulated time for the whole-cluster simulator: one event queue on a virtual clock, and a Clock
 * (src/clock.ts) per simulated process on top of it, with its own drift, jumps and seeded randomness.
 *
 * The real code of every node runs in this one Node.js process. Between two events the scheduler lets
 * every promise chain settle (`settle()`: one real setImmediate, which runs after the whole microtask
 * queue), so each event's consequences happen "at" its simulated instant and the order of everything
 * is fixed by the seed. Nothing in a simulated node may use real timers, real I/O or Math.random.
 *
 * A process clock belongs to one incarnation of a node: `kill()` (a crash) cancels its timers and makes
 * every later call a no-op, so the dead incarnation's leftover promises can never act again.
 */
import assert from 'node:assert/strict';
import type { Clock, ClockTimer } from '../clock.js';
import { EventHeap } from '../membership/sim/heap.js';
import { mulberry32 } from '../membership/sim/random.js';

/** Simulated time starts here (2026-01-01T00:00:00Z) so wall-clock values look like real ones. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

interface SimEvent {
  time: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
  owner: SimProcessClock | null;
}

class SimTimer implements ClockTimer {
  constructor(readonly event: SimEvent) {}
  unref(): ClockTimer {
    return this;
  }
}

/** Lets the microtask queue drain: every promise chain started by the last event settles. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface RunLimits {
  /** Stop once simulated time would pass this (ms since the start of the simulation). */
  untilMs: number;
  /** Stop after this many events (a bound on every loop). Default: no bound but untilMs. */
  eventsMax?: number;
  /** Checked after each event; the run stops when it returns true. */
  stopWhen?: () => boolean;
}

export class SimScheduler {
  /** Simulated milliseconds since the start. */
  timeMs = 0;
  /** Events run so far. */
  events = 0;
  /** The world's own randomness (network, faults, workload): derived from the seed. */
  readonly random: () => number;
  private readonly heap = new EventHeap<SimEvent>();
  private seq = 0;
  private readonly seed: number;
  private clocks = 0;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.random = mulberry32(this.seed ^ 0x5eed5eed);
  }

  /** Runs `fn` after `delayMs` of simulated time (0: after the events already due now). */
  at(delayMs: number, fn: () => void, owner: SimProcessClock | null = null): SimTimer {
    assert.ok(Number.isFinite(delayMs), `delay must be finite, got ${delayMs}`);
    const event: SimEvent = { time: this.timeMs + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false, owner };
    this.heap.push(event);
    return new SimTimer(event);
  }

  cancel(timer: ClockTimer | null | undefined): void {
    if (timer instanceof SimTimer) timer.event.cancelled = true;
  }

  /** Time of the next event that will run (Infinity when none). */
  nextTimeMs(): number {
    return this.heap.peekTime();
  }

  /**
   * Runs events in time order until a limit is reached; lets promises settle after each. Resolves with
   * the reason it stopped.
   */
  async run(limits: RunLimits): Promise<'until' | 'events' | 'stop' | 'empty'> {
    const eventsMax = limits.eventsMax ?? Infinity;
    let ran = 0;
    await settle();
    for (;;) {
      if (limits.stopWhen?.()) return 'stop';
      if (ran >= eventsMax) return 'events';
      const next = this.heap.peekTime();
      if (next === Infinity) return 'empty';
      if (next > limits.untilMs) {
        this.timeMs = Math.max(this.timeMs, limits.untilMs);
        return 'until';
      }
      const event = this.heap.pop() as SimEvent;
      if (event.cancelled || (event.owner !== null && event.owner.dead)) continue;
      this.timeMs = event.time;
      ran++;
      this.events++;
      event.fn();
      await settle();
    }
  }

  /** A clock for one incarnation of a simulated process. */
  clock(options: ProcessClockOptions = {}): SimProcessClock {
    return new SimProcessClock(this, options, mulberry32((this.seed * 0x9e3779b1 + ++this.clocks * 0x85ebca6b) >>> 0));
  }
}

export interface ProcessClockOptions {
  /** Rate error: the process's clock runs (1 + driftPpm / 1e6) times as fast as simulated time. */
  driftPpm?: number;
  /** Offset of its wall clock from simulated time (ms). */
  offsetMs?: number;
}

export class SimProcessClock implements Clock {
  dead = false;
  private readonly rate: number;
  private offsetMs: number;
  /** Simulated time when this clock started (its monotonic origin). */
  private readonly originMs: number;

  constructor(
    private readonly scheduler: SimScheduler,
    options: ProcessClockOptions,
    readonly random: () => number,
  ) {
    this.rate = 1 + (options.driftPpm ?? 0) / 1e6;
    this.offsetMs = options.offsetMs ?? 0;
    this.originMs = scheduler.timeMs;
  }

  now(): number {
    return Math.floor(SIM_EPOCH_MS + this.offsetMs + this.monotonicMs() + this.originMs * this.rate);
  }

  monotonicMs(): number {
    return (this.scheduler.timeMs - this.originMs) * this.rate;
  }

  /** Makes the wall clock jump by `deltaMs` (forward or back); timers and monotonic time are unaffected. */
  jump(deltaMs: number): void {
    this.offsetMs += deltaMs;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.scheduler.at(this.dead ? Infinity : Math.max(0, ms) / this.rate, fn, this);
  }

  clearTimeout(timer: ClockTimer | null | undefined): void {
    this.scheduler.cancel(timer);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    const period = Math.max(1, ms) / this.rate;
    const holder: { timer: SimTimer | null; cancelled: boolean } = { timer: null, cancelled: false };
    const handle = new IntervalTimer(holder, this.scheduler);
    const arm = () => {
      holder.timer = this.scheduler.at(period, () => {
        if (holder.cancelled) return;
        arm();
        fn();
      }, this);
    };
    arm();
    return handle;
  }

  clearInterval(timer: ClockTimer | null | undefined): void {
    if (timer instanceof IntervalTimer) timer.cancel();
    else this.scheduler.cancel(timer);
  }

  setImmediate(fn: () => void): ClockTimer {
    return this.scheduler.at(0, fn, this);
  }

  clearImmediate(timer: ClockTimer | null | undefined): void {
    this.scheduler.cancel(timer);
  }

  private readonly killWatchers = new Set<() => void>();

  /** Calls `fn` when this process dies; returns a function that unregisters it. */
  onKill(fn: () => void): () => void {
    this.killWatchers.add(fn);
    return () => this.killWatchers.delete(fn);
  }

  /** The process died: its timers never fire again and new ones are never armed. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    const watchers = [...this.killWatchers];
    this.killWatchers.clear();
    for (const fn of watchers) fn();
  }
}

class IntervalTimer implements ClockTimer {
  constructor(
    private readonly holder: { timer: SimTimer | null; cancelled: boolean },
    private readonly scheduler: SimScheduler,
  ) {}
  unref(): ClockTimer {
    return this;
  }
  cancel(): void {
    this.holder.cancelled = true;
    this.scheduler.cancel(this.holder.timer);
  }
}
