import test from 'ava';
import { parseBytes, parseDurationMs } from '../src/units.js';
import { ShoalError, toShoalError } from '../src/errors.js';

test('durations parse with units and reject garbage', (t) => {
  t.is(parseDurationMs('30s'), 30_000);
  t.is(parseDurationMs('1.5m'), 90_000);
  t.is(parseDurationMs('250'), 250);
  t.is(parseDurationMs(7), 7);
  const err = t.throws(() => parseDurationMs('soon'));
  t.true(err instanceof ShoalError);
});

test('sizes parse binary and decimal units', (t) => {
  t.is(parseBytes('64KiB'), 65_536);
  t.is(parseBytes('1MB'), 1_000_000);
  t.is(parseBytes('12'), 12);
  t.throws(() => parseBytes('12 parsecs'));
});

test('unknown errors become INTERNAL, ShoalErrors keep their code', (t) => {
  t.is(toShoalError(new Error('boom')).code, 'INTERNAL');
  t.is(toShoalError(new ShoalError('NOT_FOUND', 'x')).code, 'NOT_FOUND');
  t.deepEqual(new ShoalError('TIMEOUT', 'late').toWire(), { code: 'TIMEOUT', message: 'late' });
});

test('compound durations and weeks; a bare number is in the unit the caller names', (t) => {
  t.is(parseDurationMs('2h30m'), 9_000_000);
  t.is(parseDurationMs('1w'), 7 * 86_400_000);
  t.is(parseDurationMs('1d 2h'), 26 * 3_600_000);
  t.is(parseDurationMs('1m30s500ms'), 90_500);
  t.is(parseDurationMs('500ms'), 500);
  t.is(parseDurationMs('10', 's'), 10_000, 'the CLI counts a bare number in seconds');
  t.is(parseDurationMs('10'), 10, 'the configuration counts a bare number in ms (fields are named ...Ms)');
  t.is(parseDurationMs('1.5', 's'), 1500);
  for (const bad of ['', ' ', '1h30', '10 5s', '5x', 'm', '1mo', '-5s', '2h-30m']) {
    t.throws(() => parseDurationMs(bad, 's'), { instanceOf: ShoalError }, bad);
  }
});
