import test from 'ava';
import { EventEmitter } from 'node:events';
import { BackgroundTasks } from '../src/background.js';
import { ShoalError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { installLastResort } from '../src/node/last-resort.js';

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
  const logger = {
    lines,
    debug: (message: string, fields?: Record<string, unknown>) => void lines.push({ level: 'debug', message, fields }),
    info: (message: string, fields?: Record<string, unknown>) => void lines.push({ level: 'info', message, fields }),
    warn: (message: string, fields?: Record<string, unknown>) => void lines.push({ level: 'warn', message, fields }),
    error: (message: string, fields?: Record<string, unknown>) => void lines.push({ level: 'error', message, fields }),
    child: () => logger,
  };
  return logger;
}

test('a failing task is caught, logged with its name and code, and counted in stats and the metric', async (t) => {
  const logger = recordingLogger();
  const metric: Array<[string, Record<string, string> | undefined, number | undefined]> = [];
  const tasks = new BackgroundTasks({ logger, metrics: { inc: (name, labels, value) => void metric.push([name, labels, value]) } });
  tasks.run('clean-up', async () => {
    throw new ShoalError('READ_ONLY', 'store is read-only (disk full)');
  });
  tasks.run('clean-up', () => {
    throw new Error('threw before returning a promise');
  });
  tasks.run('anti-entropy', async () => 'fine');
  await tasks.idle();
  t.deepEqual(tasks.stats().failed, { 'clean-up': 2, 'anti-entropy': 0 });
  t.deepEqual(tasks.stats().started, { 'clean-up': 2, 'anti-entropy': 1 });
  const warns = logger.lines.filter((l) => l.level === 'warn');
  t.deepEqual(warns.map((w) => w.fields?.task), ['clean-up', 'clean-up']);
  t.deepEqual(warns.map((w) => w.fields?.code).sort(), ['INTERNAL', 'READ_ONLY']);
  t.is(metric.filter(([n, l, v]) => n === 'cluster_background_failures_total' && l?.task === 'clean-up' && v === undefined).length, 2);
});

test('close() waits for the tasks in flight and starts no new ones', async (t) => {
  const tasks = new BackgroundTasks({ logger: recordingLogger() });
  let finished = false;
  let release!: () => void;
  tasks.run('streaming', async () => {
    await new Promise<void>((r) => (release = r));
    finished = true;
  });
  t.is(tasks.size, 1);
  const closing = tasks.close(5_000);
  setTimeout(() => release(), 20);
  await closing;
  t.true(finished, 'close waited for the task');
  let started = false;
  t.false(
    await tasks.settled('streaming', async () => {
      started = true;
    }),
  );
  t.false(started);
});

test('close() is bounded: a task that never settles is logged, not waited for forever', async (t) => {
  const logger = recordingLogger();
  const tasks = new BackgroundTasks({ logger });
  tasks.run('stuck', () => new Promise(() => undefined));
  const t0 = Date.now();
  await tasks.close(50);
  t.true(Date.now() - t0 < 2_000);
  t.true(logger.lines.some((l) => l.message.includes('still running')));
});

test('the last-resort handler logs an escaped rejection or exception and starts one clean stop', (t) => {
  const proc = new EventEmitter();
  const logger = recordingLogger();
  const stops: string[] = [];
  const remove = installLastResort(proc, { logger, stop: (reason) => void stops.push(reason) });
  proc.emit('unhandledRejection', new ShoalError('UNAVAILABLE', 'hint store failed'));
  proc.emit('uncaughtException', new Error('boom'));
  t.deepEqual(stops, ['unhandled promise rejection'], 'one stop, however many follow');
  t.is(logger.lines.filter((l) => l.level === 'error').length, 2);
  t.regex(String(logger.lines[0].fields?.stack), /hint store failed/);
  remove();
  t.is(proc.listenerCount('unhandledRejection'), 0);
  t.is(proc.listenerCount('uncaughtException'), 0);
});
