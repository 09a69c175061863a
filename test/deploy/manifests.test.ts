/**
 * deploy/: every Kubernetes manifest parses, and what the manifests and the systemd unit use exists:
 * the agent's subcommand and flags (from `shoal agent --help`), every SHOAL_* variable (a config
 * field, an alias or a client variable), the resulting configuration (validated by the real loader
 * and schema), the ports of the Service, containers and probes (those of the config), the data dir
 * (the volume / StateDirectory), and stop timeouts longer than shutdown.timeoutMs.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../../src/cli/run.js';
import { parseSeed } from '../../src/membership/seeds.js';
import { loadConfig, type LoadedConfig } from '../../src/node/config.js';
import { knownEnvNames } from '../../src/node/config-env.js';
import { DEFAULTS } from '../../src/node/config-defaults.js';
import { bufferIo } from '../node/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy/kubernetes');
const UNIT = join(ROOT, 'deploy/systemd/shoal.service');
const ENV_FILE = join(ROOT, 'deploy/systemd/shoal.env');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every document of every YAML file under deploy/kubernetes. */
function manifests(): Array<{ file: string; doc: Obj }> {
  const out: Array<{ file: string; doc: Obj }> = [];
  for (const file of readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc = document.toJS() as Obj | null;
      if (doc !== null) out.push({ file, doc });
    }
  }
  return out;
}

function byKind(kind: string, name?: string): Obj {
  const found = manifests().filter((m) => m.doc.kind === kind && (name === undefined || m.doc.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0].doc;
}

/** The SHOAL_* variables the code reads: config fields, aliases, cluster file selection, and the client's (src/cli/run.ts). */
/** Every SHOAL_* name the agent or the CLI reads (src/node/config-env.ts keeps the one list). */
function knownVariables(): Set<string> {
  return knownEnvNames(DEFAULTS);
}

async function agentFlags(): Promise<Set<string>> {
  const b = bufferIo();
  if ((await runCli(['agent', '--help'], b.io)) !== 0) throw new Error(b.stderr());
  return new Set([...b.stdout().matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]));
}

/** Values of the downward API for one sample pod. */
const POD = { 'metadata.name': 'shoal-0', 'metadata.namespace': 'prod', 'status.podIP': '10.1.2.3' } as Record<string, string>;

/** The container's environment as the kubelet builds it: the ConfigMap, then env with $(VAR) expanded. */
function containerEnv(): Record<string, string> {
  const container = byKind('StatefulSet').spec.template.spec.containers[0] as Obj;
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const cm = byKind('ConfigMap', from.configMapRef.name);
    Object.assign(env, cm.data);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Z_]+)\)/g, (_: string, v: string) => env[v] ?? `$(${v})`);
    else if (e.valueFrom?.fieldRef !== undefined) env[e.name] = POD[e.valueFrom.fieldRef.fieldPath];
    else if (e.valueFrom?.secretKeyRef?.optional !== true) throw new Error(`${e.name}: a required secret the test cannot see`);
  }
  return env;
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

function loadWithEnv(env: Record<string, string>): LoadedConfig {
  return loadConfig({ env });
}

test('every Kubernetes manifest parses, with apiVersion, kind and a name', (t) => {
  const all = manifests();
  t.true(all.length >= 5, `${all.length} documents`);
  for (const { file, doc } of all) {
    t.is(typeof doc.apiVersion, 'string', file);
    t.is(typeof doc.kind, 'string', file);
    if (doc.kind !== 'Kustomization') t.is(typeof doc.metadata?.name, 'string', `${file} ${doc.kind}`);
  }
  const kustomization = byKind('Kustomization');
  const files = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
  t.deepEqual([...kustomization.resources].sort(), files, 'the kustomization lists every manifest');
});

test('the StatefulSet\'s variables are all known and give a valid config: id from the pod name, advertised pod IP, SRV seeds of the headless Service', (t) => {
  const env = containerEnv();
  const known = knownVariables();
  for (const name of Object.keys(env).filter((n) => n.startsWith('SHOAL_'))) t.true(known.has(name), `${name} is read by shoal`);
  const { config } = loadWithEnv(env);
  t.is(config.node.id, 'shoal-0');
  t.is(config.node.advertiseHost, '10.1.2.3');
  t.is(config.node.dataDir, '/var/lib/shoal');
  t.false(config.shutdown.leave, 'a restarted pod comes back: no leave on SIGTERM');
  const headless = byKind('Service', byKind('StatefulSet').spec.serviceName);
  t.is(headless.spec.clusterIP, 'None');
  t.true(headless.spec.publishNotReadyAddresses, 'joining pods are found through DNS');
  const gossipPort = headless.spec.ports.find((p: Obj) => p.protocol === 'UDP');
  t.deepEqual(config.membership.seeds.map(parseSeed), [{
    kind: 'srv', name: `_${gossipPort.name}._udp.${headless.metadata.name}.prod.svc.cluster.local`,
    text: `srv:_${gossipPort.name}._udp.${headless.metadata.name}.prod.svc.cluster.local`,
  }]);
});

test('the ports of the config, the containers, the Services and the probes agree; the data dir is the volume', (t) => {
  const { config } = loadWithEnv(containerEnv());
  const sts = byKind('StatefulSet');
  const container = sts.spec.template.spec.containers[0] as Obj;
  const containerPort = (name: string) => (container.ports as Obj[]).find((p) => p.name === name);
  const want: Array<[string, number, string]> = [
    ['gossip', portOf(config.node.gossip), 'UDP'],
    ['gossip-tcp', portOf(config.node.gossip), 'TCP'],
    ['rpc', portOf(config.node.rpc), 'TCP'],
    ['metrics', portOf(config.node.metrics), 'TCP'],
  ];
  for (const [name, port, protocol] of want) {
    t.is(containerPort(name)?.containerPort, port, `container port ${name}`);
    t.is(containerPort(name)?.protocol, protocol, `container port ${name}`);
  }
  for (const service of manifests().filter((m) => m.doc.kind === 'Service').map((m) => m.doc)) {
    for (const p of service.spec.ports as Obj[]) {
      const target = containerPort(p.targetPort);
      t.truthy(target, `${service.metadata.name}: ${p.targetPort} is a container port`);
      t.is(p.port, target?.containerPort, `${service.metadata.name} ${p.name}`);
      t.is(p.protocol, target?.protocol, `${service.metadata.name} ${p.name}`);
    }
    t.deepEqual(service.spec.selector, sts.spec.template.metadata.labels);
  }
  const probe = container.readinessProbe.httpGet;
  t.is(probe.path, '/health');
  t.is(containerPort(probe.port)?.containerPort, portOf(config.node.metrics), 'readiness on the metrics port');
  t.true(config.metrics.enabled);
  t.is(containerPort(container.livenessProbe.tcpSocket.port)?.containerPort, portOf(config.node.rpc));
  for (const bind of [config.node.gossip, config.node.rpc, config.node.metrics]) t.regex(bind, /^0\.0\.0\.0:/, 'reachable from other pods and the kubelet');
  const mount = (container.volumeMounts as Obj[]).find((v) => v.name === sts.spec.volumeClaimTemplates[0].metadata.name);
  t.is(mount?.mountPath, config.node.dataDir);
});

test('the StatefulSet stops gracefully within its grace period, runs the agent, and the PDB keeps a quorum', async (t) => {
  const { config } = loadWithEnv(containerEnv());
  const sts = byKind('StatefulSet');
  const pod = sts.spec.template.spec as Obj;
  t.true(pod.terminationGracePeriodSeconds * 1000 > config.shutdown.timeoutMs, 'the kubelet waits longer than the agent\'s own bound');
  t.is(sts.spec.podManagementPolicy, 'Parallel');
  const command = pod.containers[0].command as string[];
  t.deepEqual(command.slice(0, 3), ['node', '/app/bin/shoal.js', 'agent']);
  t.true(existsSync(join(ROOT, 'bin/shoal.js')));
  const flags = await agentFlags();
  t.true(flags.has('--seeds') && flags.has('--set'), 'help lists the flags');
  for (const arg of [...command.slice(3), ...(pod.containers[0].args ?? [])].filter((a: string) => a.startsWith('--'))) {
    t.true(flags.has(arg.split('=')[0]), `${arg} is a flag of shoal agent`);
  }
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  t.true(dockerfile.includes(`CMD ${JSON.stringify(command).replace(/,/g, ', ')}`), 'the image runs the same command');
  const pdb = byKind('PodDisruptionBudget');
  t.deepEqual(pdb.spec.selector.matchLabels, sts.spec.template.metadata.labels);
  const down = pdb.spec.maxUnavailable as number;
  t.true(config.cluster.replicationFactor - down >= Math.max(config.cluster.writeQuorum, config.cluster.readQuorum), 'a disruption leaves a quorum of every key');
});

/** A systemd unit as key → values (repeated keys accumulate). */
function unitFile(path: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m !== null) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m !== null) env[m[1]] = m[2];
  }
  return env;
}

test('the systemd unit: simple service, restart on failure, /var/lib/shoal, file limit, sandbox; its variables give a valid config', async (t) => {
  const unit = unitFile(UNIT);
  const one = (key: string) => unit.get(key)?.at(-1);
  t.is(one('Type'), 'simple');
  t.is(one('Restart'), 'on-failure');
  t.is(one('StateDirectory'), 'shoal');
  t.true(Number(one('LimitNOFILE')) >= 65_536);
  for (const hardening of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'RestrictAddressFamilies', 'SystemCallFilter']) {
    t.truthy(one(hardening), `${hardening} is set`);
  }
  t.is(one('ProtectSystem'), 'strict');
  // Environment= first, then EnvironmentFile= wins (systemd's order); %l is the short host name.
  const env: Record<string, string> = {};
  for (const assignment of unit.get('Environment') ?? []) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1).replace('%l', 'db1');
  }
  t.is(one('EnvironmentFile'), '/etc/shoal/shoal.env');
  Object.assign(env, envFile(ENV_FILE));
  const known = knownVariables();
  for (const name of Object.keys(env)) t.true(known.has(name), `${name} is read by shoal`);
  const { config } = loadWithEnv(env);
  t.is(config.node.id, 'db1');
  t.is(config.node.dataDir, '/var/lib/shoal', 'the data dir is the StateDirectory');
  t.true(config.membership.seeds.length > 0);
  const stopSec = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec') ?? '')?.[1]);
  t.true(stopSec * 1000 > config.shutdown.timeoutMs, 'systemd waits longer than the agent\'s own bound');
  const exec = (one('ExecStart') ?? '').split(/\s+/);
  t.deepEqual(exec.slice(1, 3), ['/opt/shoal/bin/shoal.js', 'agent']);
  const flags = await agentFlags();
  for (const arg of exec.slice(3).filter((a) => a.startsWith('--'))) t.true(flags.has(arg.split('=')[0]), `${arg} is a flag of shoal agent`);
});

const HAVE_SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
if (!HAVE_SYSTEMD_ANALYZE) console.log('manifests.test.ts: systemd-analyze is not installed: skipping `systemd-analyze verify`');
(HAVE_SYSTEMD_ANALYZE ? test : test.skip)('systemd-analyze verify accepts the unit', (t) => {
  const result = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 30_000 });
  // Lines about the machine (no systemd as PID 1 in a container) are not the unit's problems.
  const problems = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.includes('shoal.service'));
  t.deepEqual(problems, []);
  t.is(result.status, 0, result.stderr);
});
