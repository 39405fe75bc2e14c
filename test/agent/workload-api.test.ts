// The agent's service pieces that need no processes: which declared service a calling process
// is (never one it does not match), labels files, and the services part of the agent YAML.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { agentServiceSchema, callerService, declarationOf, parseAgentConfig, parseLabelsFile, processMatches } from '../../src/agent/index.js';
import type { AgentService } from '../../src/agent/index.js';
import { isPosternError } from '../../src/errors.js';
import { cleanupTempDirs, tempDir } from '../helpers/util.js';

after(cleanupTempDirs);

const SHA = 'a'.repeat(64);
const service = (input: Record<string, unknown>): AgentService => agentServiceSchema.parse(input);
const payroll = service({ name: 'payroll', namespace: 'fin', process: { exe: '/usr/bin/payroll', uid: 1001, sha256: SHA }, labels: { app: 'payroll' } });
const ledger = service({ name: 'ledger', namespace: 'fin', process: { exe: '/usr/bin/node', uid: 1002 } });
const reports = service({ name: 'reports', namespace: 'fin', process: { exe: '/usr/bin/node' } });
const portOnly = service({ name: 'web', port: 8080 });
const peer = (exe: string, uid: number, extra: { sha256?: string; exeDeleted?: boolean } = {}) => ({ pid: 42, pids: [42], exe, exeDeleted: false, uid, realUid: uid, gid: uid, realGid: uid, ...extra });

test('processMatches: exe, and uid and sha256 when declared; a deleted executable or no selector never matches', () => {
  assert.ok(processMatches(payroll, peer('/usr/bin/payroll', 1001, { sha256: SHA })));
  assert.ok(!processMatches(payroll, peer('/usr/bin/payroll', 1001, { sha256: 'b'.repeat(64) })), 'another binary at the same path');
  assert.ok(!processMatches(payroll, peer('/usr/bin/payroll', 1001)), 'an unknown hash is not the declared one');
  assert.ok(!processMatches(payroll, peer('/usr/bin/payroll', 0, { sha256: SHA })), 'another uid, even root');
  assert.ok(!processMatches(payroll, peer('/usr/bin/payroll', 1001, { sha256: SHA, exeDeleted: true })));
  assert.ok(processMatches(reports, peer('/usr/bin/node', 7)), 'no uid declared: any uid');
  assert.ok(!processMatches(portOnly, peer('/usr/bin/node', 7)), 'a service without a process selector is never handed out');
});

test('callerService: the one matching service; a name narrows but never grants; several need a name', () => {
  const services = [payroll, ledger, reports, portOnly];
  assert.equal(callerService(services, peer('/usr/bin/payroll', 1001, { sha256: SHA }), undefined), payroll);
  const refused = (fn: () => unknown, code: 'forbidden' | 'bad_request' | 'not_found', message: RegExp) => assert.throws(fn, (err) => isPosternError(err, code) && message.test(err.message));
  refused(() => callerService(services, peer('/usr/bin/curl', 1001), undefined), 'forbidden', /\/usr\/bin\/curl, uid 1001\) matches no service/);
  refused(() => callerService(services, peer('/usr/bin/node', 1002), undefined), 'bad_request', /matches fin\/ledger, fin\/reports: name one/);
  assert.equal(callerService(services, peer('/usr/bin/node', 1002), 'fin/ledger'), ledger);
  refused(() => callerService(services, peer('/usr/bin/node', 1003), 'fin/ledger'), 'forbidden', /does not match the process declared for fin\/ledger/);
  refused(() => callerService(services, peer('/usr/bin/payroll', 1001, { sha256: SHA }), 'fin/nope'), 'not_found', /not declared/);
  assert.equal(callerService([portOnly, service({ name: 'cli', process: { exe: '/bin/x' } })], peer('/bin/x', 1), 'cli').name, 'cli', 'a bare name means the default namespace');
});

test('labels files: scalars become strings, nesting is refused; the YAML labels win', async () => {
  assert.deepEqual(parseLabelsFile('vulnerable: false\ncves: 0\nscanner: trivy\n', 's.yaml'), { vulnerable: 'false', cves: '0', scanner: 'trivy' });
  assert.deepEqual(parseLabelsFile('{"a": "b"}', 's.json'), { a: 'b' });
  assert.deepEqual(parseLabelsFile('', 'empty.yaml'), {});
  assert.throws(() => parseLabelsFile('a: { b: c }', 's.yaml'), (err) => isPosternError(err, 'config_invalid') && /label a must be/.test(err.message));
  assert.throws(() => parseLabelsFile('- a', 's.yaml'), (err) => isPosternError(err, 'config_invalid'));
  const dir = (await tempDir('postern-labels-')).path;
  const file = join(dir, 'scan.yaml');
  await writeFile(file, 'vulnerable: true\napp: other\n');
  const declared = await declarationOf(service({ name: 'payroll', labels: { app: 'payroll' }, labels_file: file }));
  assert.deepEqual(declared.labels, { app: 'payroll', vulnerable: 'true' });
  assert.equal('labels_file' in declared, false, 'the control plane gets the labels, not the path');
  await assert.rejects(declarationOf(service({ name: 'x', labels_file: join(dir, 'missing.yaml') })), (err) => isPosternError(err, 'config_invalid') && /ENOENT/.test(err.message));
});

test('agent YAML: services need a Workload API socket, are unique, and are validated', () => {
  const base = 'server: https://localhost:8443\nca_pin: sha256:0123456789abcdef0123456789\nattestation: { method: join_token, token: pat1.x.y }\n';
  const config = parseAgentConfig(`${base}workload_api: { socket: /run/w.sock }\nservices:\n  - { name: payroll, namespace: fin, labels: { app: payroll } }\n`, 'a.yaml');
  assert.equal(config.services[0]!.namespace, 'fin');
  assert.equal(config.workload_api!.mode, '0660');
  assert.equal(parseAgentConfig(`${base}workload_api: { socket: /w }\nservices: [{ name: web }]\n`, 'a.yaml').services[0]!.namespace, 'default');
  const problem = (yaml: string, message: RegExp) => assert.throws(() => parseAgentConfig(base + yaml, 'a.yaml'), (err) => isPosternError(err, 'config_invalid') && message.test(err.message));
  problem('services: [{ name: web }]\n', /workload_api: required when services are declared/);
  problem('workload_api: { socket: /w }\nservices: [{ name: web }, { name: web, namespace: default }]\n', /default\/web is declared twice/);
  problem('workload_api: { socket: /w }\nservices: [{ name: Web_1 }]\n', /services\[0\]\.name: must be a DNS label/);
  problem('workload_api: { socket: /w }\nservices: [{ name: web, process: { exe: bin/web } }]\n', /absolute path/);
  problem('workload_api: { socket: /w, mode: "0666" }\n', /mode/);
});
