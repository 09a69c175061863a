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
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
