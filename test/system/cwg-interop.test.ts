/**
 * Interop (root): site A runs cwg; site B's device is made by wireguard-go the way
 * net-admin-helper made its kernel device: created in the site namespace, moved into the
 * container (renamed <prefix>-<net>-<host>), configured with `wg set` (private key file,
 * listen port, peer, endpoint, allowed IPs = the /31), addressed /31 and brought up.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, waitFor, which } from '../helpers/proc.js';
import { cwgAddr, daemonsIn, e2eSkipReason, ip, Lab, randomNet, randomPort, type Site } from '../helpers/sites.js';

const skip = e2eSkipReason(['wireguard-go', 'wg', 'ping']);
if (skip) console.warn(`cwg interop test skipped: ${skip}`);

describe.skipIf(skip !== null)('cwg with wireguard-go at the other site', () => {
  const lab = new Lab();
  let A: Site;
  let B: Site;
  let keyDir = '';

  beforeAll(() => {
    keyDir = mkdtempSync(join(tmpdir(), 'cwg-interop-'));
    [A, B] = lab.setup();
  });
  afterAll(async () => {
    await lab.cleanup();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it('connects a cwg device to a wireguard-go device configured as net-admin-helper did', async () => {
    const cA = await lab.container(A);
    const cB = await lab.container(B);
    const net = randomNet();
    const portA = randomPort();
    const portB = portA + 1;
    const name = `cwg-${net}-1`;
    const wg = which('wg')!;

    // Site A: cwg.
    const created = await lab.cwg(A, ['cwg_create', String(cA.pid), String(net), '0', String(portA)]);
    expect(created.code).toBe(0);
    const keyA = created.stdout.trim();

    // Site B: wireguard-go, created in the site namespace under a temporary name.
    const tmp = `wgi${randomBytes(4).toString('hex')}`;
    // (without LOG_LEVEL, wireguard-go's daemon does not keep our pipes open)
    const env: NodeJS.ProcessEnv = { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' };
    delete env.LOG_LEVEL;
    delete env.WG_PROCESS_FOREGROUND;
    const started = await run(which('ip')!, ['netns', 'exec', B.ns, which('wireguard-go')!, tmp], { env });
    expect(started.code).toBe(0);
    for (const pid of daemonsIn(B.inode)) lab.own(pid);
    const privB = (await run(wg, ['genkey'])).stdout;
    const pubB = (await run(wg, ['pubkey'], { input: privB })).stdout.trim();
    const keyFile = join(keyDir, 'b.key');
    writeFileSync(keyFile, privB, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    ip(['-n', B.ns, 'link', 'set', 'dev', tmp, 'netns', String(cB.pid), 'name', name]);
    const set = await run(wg, [
      'set',
      tmp,
      'private-key',
      keyFile,
      'listen-port',
      String(portB),
      'peer',
      keyA,
      'endpoint',
      `${A.addr}:${portA}`,
      'allowed-ips',
      `${cwgAddr(net, 0)}/31`,
    ]);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect((await lab.inContainer(cB, which('ip')!, ['addr', 'add', `${cwgAddr(net, 1)}/31`, 'dev', name])).code).toBe(0);
    expect((await lab.inContainer(cB, which('ip')!, ['link', 'set', name, 'up'])).code).toBe(0);

    // Site A connects to it.
    expect(await lab.cwg(A, ['cwg_connect', String(cA.pid), String(net), '0', `${B.addr}:${portB}`, pubB])).toEqual({ code: 0, stdout: '', stderr: '' });

    // Traffic both ways: ping from A (cwg) and from B (wireguard-go), and an HTTP page served by A's container.
    const pingA = await lab.inContainer(cA, which('ping')!, ['-c', '3', '-i', '0.2', '-W', '3', cwgAddr(net, 1)]);
    expect(pingA.code).toBe(0);
    const pingB = await lab.inContainer(cB, which('ping')!, ['-c', '2', '-i', '0.2', '-W', '3', cwgAddr(net, 0)]);
    expect(pingB.code).toBe(0);
    const marker = `interop-${randomBytes(8).toString('hex')}`;
    const server = lab.spawnOwned(which('nsenter')!, [
      '-t',
      String(cA.pid),
      '-n',
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end(process.argv[1])).listen(8080, '${cwgAddr(net, 0)}', () => console.log('ready'))`,
      marker,
    ]);
    let out = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    expect(await waitFor(() => out.includes('ready'), 10_000)).toBe(true);
    const page = await lab.inContainer(cB, process.execPath, [
      '-e',
      'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))',
      `http://${cwgAddr(net, 0)}:8080/`,
    ]);
    expect(page.stdout).toBe(marker);
    server.kill('SIGKILL');

    // Both sides saw the handshake.
    const wgShow = await run(wg, ['show', tmp]);
    expect(wgShow.stdout).toContain(`peer: ${keyA}`);
    expect(wgShow.stdout).toContain('latest handshake:');
    const cwgShow = await lab.cwg(A, ['show', String(cA.pid), String(net), '0']);
    expect(cwgShow.stdout).toContain(`peer: ${pubB}\n  endpoint: ${B.addr}:${portB}\n  allowed ips: ${cwgAddr(net, 0)}/31\n  latest handshake:`);

    // Teardown: cwg destroys its side; wireguard-go goes with its container.
    expect((await lab.cwg(A, ['cwg_destroy', String(cA.pid), String(net), '0'])).code).toBe(0);
    await lab.stopContainer(cB);
    expect(await waitFor(() => !existsSync(`/var/run/wireguard/${tmp}.sock`) && daemonsIn(B.inode).length === 0, 5000)).toBe(true);
  });
});
