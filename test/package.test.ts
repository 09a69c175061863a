/**
 * The packed tarball is what users install: it must carry the built CLI (dist), its config, docs and
 * LICENSE and nothing of the development tree, and `shoal` must run once it is installed. Packs with
 * `npm pack` (which builds through the prepare script) in a copy of the package's files, so that the
 * checkout's own dist/ (which other tests run agents from) is never rebuilt under them, and installs
 * the tarball into a temp prefix with the registry's packages taken from npm's cache when they are
 * there (--prefer-offline).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { tempDir } from './node/helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function hasNpm(): Promise<boolean> {
  try {
    await run('npm', ['--version']);
    return true;
  } catch {
    return false;
  }
}
const npmFound = await hasNpm();
if (!npmFound) console.log('package test skipped: npm is not on the PATH');
const maybe = npmFound ? test : test.skip;

maybe('npm pack ships dist, bin, config, docs, README and LICENSE (no src, test or bench); installed, shoal runs', async (t) => {
  t.timeout(120_000);
  const tmp = tempDir('shoal-pack-');
  t.teardown(tmp.remove);
  const copy = join(tmp.dir, 'package');
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin', 'config', 'docs', 'README.md', 'LICENSE', 'cluster.example.json', '.gitignore']) {
    if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const { stdout } = await run('npm', ['pack', '--pack-destination', tmp.dir, '--json', '--silent'], { cwd: copy, maxBuffer: 16 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const paths = packed.files.map((f) => f.path);
  for (const needed of ['bin/shoal.js', 'dist/cli/main.js', 'dist/node/node.js', 'config/default.json', 'docs/CLI.md', 'README.md', 'LICENSE', 'cluster.example.json', 'package.json']) {
    t.true(paths.includes(needed), `the tarball carries ${needed}`);
  }
  for (const dev of ['src/', 'test/', 'bench/', '.ci/', 'node_modules/']) t.false(paths.some((p) => p.startsWith(dev)), `no ${dev} in the tarball`);

  const prefix = join(tmp.dir, 'prefix');
  await run('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', '--no-save', '--loglevel=error', join(tmp.dir, packed.filename)], {
    cwd: tmp.dir, maxBuffer: 16 * 1024 * 1024,
  });
  const shoal = join(prefix, 'node_modules', '.bin', 'shoal');
  t.true(existsSync(shoal));
  t.false(readdirSync(join(prefix, 'node_modules')).includes('ava'), 'no dev dependencies');
  const version = await run(shoal, ['--version'], { cwd: tmp.dir });
  t.is(version.stdout.trim(), (await import('../package.json', { with: { type: 'json' } })).default.version);
  const help = await run(shoal, ['--help'], { cwd: tmp.dir });
  t.regex(help.stdout, /shoal get <key>/);
  t.regex(help.stdout, /Exit status:/);
  // A client command loads the whole client path and reports an unreachable node with exit 3.
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const err = await run(shoal, ['get', 'k', '--addr', `127.0.0.1:${closed}`, '--timeout', '5'], { cwd: tmp.dir }).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );
  t.is(err?.code, 3);
  t.regex(err?.stderr ?? '', /connection refused/);
});
