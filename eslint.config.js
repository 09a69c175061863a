// Lint: the recommended rules of eslint and typescript-eslint, plus a few house rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'data/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      'prefer-const': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Type-aware rules for the daemon's code: a promise nobody awaits or handles is a crash waiting for
    // a rejection (Node exits on an unhandled one). Background work goes through BackgroundTasks.
    files: ['src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // The membership runtime runs in the whole-cluster simulator (src/sim/): its time, timers,
    // randomness, sockets, files and DNS go through the injected seams (membership.ts's options), never
    // directly. Only the default implementations of those seams touch the real thing.
    files: ['src/membership/**/*.ts'],
    ignores: [
      'src/membership/sim/**',
      'src/membership/udp.ts', // dgramUdp
      'src/membership/sync.ts', // TCP push-pull
      'src/membership/dns.ts', // nodeSeedDns
      'src/membership/entropy.ts', // cryptoRandom
    ],
    rules: {
      'no-restricted-globals': ['error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'performance'].map((name) => ({
          name, message: 'use the injected Clock (src/clock.ts): the simulator runs this code on simulated time',
        })),
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'use the injected Clock (clock.now / clock.monotonicMs)' },
        { object: 'Math', property: 'random', message: 'use the injected random source (clock.random)' },
        { object: 'performance', property: 'now', message: 'use the injected Clock (clock.monotonicMs)' },
        { object: 'process', property: 'hrtime', message: 'use the injected Clock (clock.monotonicMs)' },
        ...['randomBytes', 'randomInt', 'randomUUID', 'randomFillSync', 'randomFill', 'getRandomValues'].map((property) => ({
          object: 'crypto', property, message: 'use the injected random source (clock.random; entropy.ts is the default)',
        })),
      ],
      'no-restricted-syntax': ['error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'use the injected Clock (clock.now)' },
        { selector: "CallExpression[callee.name='Date']", message: 'use the injected Clock (clock.now)' },
      ],
      'no-restricted-imports': ['error', {
        paths: [
          ...['dgram', 'node:dgram'].map((name) => ({ name, message: 'datagrams go through the UdpFactory seam (udp.ts)' })),
          ...['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({ name, message: 'files go through the FsIo seam (src/storage/fsio.ts)' })),
          ...['dns', 'node:dns', 'dns/promises', 'node:dns/promises'].map((name) => ({ name, message: 'DNS goes through the SeedDns seam (dns.ts)' })),
          ...['timers', 'node:timers', 'timers/promises', 'node:timers/promises', 'perf_hooks', 'node:perf_hooks'].map((name) => ({
            name, message: 'use the injected Clock (src/clock.ts)',
          })),
          ...['net', 'node:net'].map((name) => ({
            name, importNames: ['default', 'connect', 'createConnection', 'createServer', 'Socket', 'Server'],
            message: 'push-pull goes through the SyncTransport / SyncListenerFactory seams (sync.ts); only isIP & co. may be imported',
          })),
          ...['crypto', 'node:crypto'].map((name) => ({
            name, importNames: ['default', 'randomBytes', 'randomInt', 'randomUUID', 'randomFillSync', 'randomFill', 'getRandomValues', 'webcrypto'],
            message: 'use the injected random source (clock.random; entropy.ts is the default)',
          })),
        ],
      }],
    },
  },
  {
    // The time and randomness seam (src/clock.ts): the cluster layer reads time, arms timers and draws
    // random numbers only through its injected Clock, so the whole-cluster simulator (src/sim/) runs it
    // on simulated time and a seed replays the same trace.
    files: ['src/cluster/**/*.ts', 'src/background.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'performance'].map((name) => ({
          name,
          message: 'use the injected Clock (src/clock.ts), not the real timers or time',
        })),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'use clock.now() (wall) or clock.monotonicMs() (durations)' },
        { object: 'Math', property: 'random', message: 'use clock.random() (seeded in the simulator)' },
        { object: 'performance', property: 'now', message: 'use clock.monotonicMs()' },
        ...['setTimeout', 'setInterval', 'setImmediate', 'Date', 'performance'].map((property) => ({
          object: 'globalThis',
          property,
          message: 'use the injected Clock (src/clock.ts)',
        })),
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:crypto', importNames: ['randomUUID', 'randomBytes', 'randomInt'], message: 'derive ids from clock.random() (deterministic in the simulator)' },
            { name: 'crypto', importNames: ['randomUUID', 'randomBytes', 'randomInt'], message: 'derive ids from clock.random() (deterministic in the simulator)' },
            { name: 'node:timers', message: 'use the injected Clock (src/clock.ts)' },
            { name: 'node:timers/promises', message: 'use sleep()/yieldTurn() of src/clock.ts' },
            { name: 'timers', message: 'use the injected Clock (src/clock.ts)' },
            { name: 'timers/promises', message: 'use sleep()/yieldTurn() of src/clock.ts' },
            { name: 'node:perf_hooks', message: 'use clock.monotonicMs()' },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'new Date() reads the real clock: use new Date(clock.now())' },
      ],
    },
  },
  {
    // The storage engine and the hint store run inside the whole-cluster simulator (src/sim/): every file
    // access goes through an injected FsIo (src/storage/fsio.ts) and every timer, time read and random
    // draw through an injected Clock (src/clock.ts), never node:fs or the globals directly.
    files: ['src/storage/**/*.ts', 'src/cluster/hints.ts'],
    ignores: ['src/storage/fsio.ts', 'src/storage/liveness.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({
            name,
            message: 'Go through the injected FsIo (src/storage/fsio.ts), so the simulator can give a simulated disk.',
          })),
        },
      ],
    },
  },
  {
    files: ['src/storage/**/*.ts', 'src/cluster/hints.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'].map((name) => ({
          name,
          message: 'Use the injected Clock (src/clock.ts): the simulator runs these on simulated time.',
        })),
      ],
      'no-restricted-properties': [
        'error',
        ...[
          ['Date', 'now'],
          ['Math', 'random'],
          ['performance', 'now'],
          ['process', 'hrtime'],
        ].map(([object, property]) => ({ object, property, message: 'Use the injected Clock (src/clock.ts).' })),
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use the injected Clock (src/clock.ts).' },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
