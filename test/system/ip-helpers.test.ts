/**
 * iproute2 helpers against a namespace of our own (anonymous: held by `unshare --net sleep`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ipx from '../../tun/ip.js';
import { AnonNetns } from '../helpers/anon-netns.js';
import { isRoot } from '../helpers/proc.js';

const netns = new AnonNetns();
const newNetns = async (): Promise<number> => (await netns.create()).pid;

afterAll(async () => {
  await netns.killAll();
});

describe.skipIf(!isRoot)('ip helpers in a namespace' + (isRoot ? '' : ' (skipped: needs root)'), () => {
  let pid = 0;
  let pid2 = 0;
  beforeAll(async () => {
    pid = await newNetns();
    pid2 = await newNetns();
  });

  it('links: exists, veth, up/down, MTU, index, delete', () => {
    const o = { netnsPid: pid };
    expect(ipx.linkExists('lo', o)).toBe(true);
    expect(ipx.linkExists('nosuch0', o)).toBe(false);
    ipx.linkSetUp('lo', o);
    ipx.vethAdd('ta0', 'ta1', o);
    expect(ipx.linkExists('ta0', o)).toBe(true);
    expect(ipx.linkExists('ta0')).toBe(false); // not in our namespace
    ipx.setMtu('ta0', 9000, o);
    expect(ipx.getMtu('ta0', o)).toBe(9000);
    expect(ipx.linkIndex('ta0', o)).toBeGreaterThan(1);
    ipx.linkSetUp('ta0', o);
    expect(ipx.ip(['-o', 'link', 'show', 'dev', 'ta0'], o)).toMatch(/[<,]UP[,>]/);
    ipx.linkSetDown('ta0', o);
    expect(ipx.ip(['-o', 'link', 'show', 'dev', 'ta0'], o)).not.toMatch(/[<,]UP[,>]/);
    ipx.linkDel('ta0', o);
    expect(ipx.linkExists('ta0', o)).toBe(false);
    expect(ipx.linkExists('ta1', o)).toBe(false); // the peer goes with it
    expect(() => ipx.linkDel('ta0', o)).toThrow(ipx.IpError);
    expect(() => ipx.linkDel('ta0', { ...o, ifExists: true })).not.toThrow();
  });

  it('addresses and routes (v4 and v6)', () => {
    const o = { netnsPid: pid };
    ipx.vethAdd('tb0', 'tb1', o);
    ipx.linkSetUp('tb0', o);
    ipx.linkSetUp('tb1', o);
    ipx.addrAdd('tb0', '10.55.0.1/24', o);
    ipx.addrAdd('tb0', 'fd00:55::1/64', { ...o, nodad: true });
    const addrs = ipx.ip(['-o', 'addr', 'show', 'dev', 'tb0'], o);
    expect(addrs).toContain('inet 10.55.0.1/24');
    expect(addrs).toContain('inet6 fd00:55::1/64');
    ipx.routeAdd('10.56.0.0/16', 'tb0', o);
    ipx.routeAdd('fd00:56::/48', 'tb0', { ...o, metric: 5 });
    ipx.routeAdd('10.57.0.0/16', 'tb0', { ...o, table: 123 });
    expect(ipx.ip(['route', 'show', 'dev', 'tb0'], o)).toContain('10.56.0.0/16');
    expect(ipx.ip(['-6', 'route', 'show', 'dev', 'tb0'], o)).toMatch(/fd00:56::\/48 .*metric 5/);
    expect(ipx.ip(['route', 'show', 'table', '123'], o)).toContain('10.57.0.0/16');
    ipx.routeDel('10.56.0.0/16', 'tb0', o);
    expect(ipx.ip(['route', 'show', 'dev', 'tb0'], o)).not.toContain('10.56.0.0/16');
    ipx.addrDel('tb0', '10.55.0.1/24', o);
    ipx.addrFlush('tb0', o);
    expect(ipx.ip(['-o', '-4', 'addr', 'show', 'dev', 'tb0'], o)).toBe('');
    ipx.linkDel('tb0', o);
  });

  it('errors are one line with the first line of ip stderr', () => {
    const o = { netnsPid: pid };
    let err: unknown;
    try {
      ipx.addrAdd('nosuch0', '10.0.0.1/24', o);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ipx.IpError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/^ip addr add 10\.0\.0\.1\/24 dev nosuch0 \(netns of pid \d+\): .*(Cannot find device|does not exist)/);
    expect(() => ipx.addrAdd('lo', '10.0.0.1/24; reboot', o)).toThrow(/invalid address/);
    expect(() => ipx.linkExists('lo', { netnsPid: 0x3ffffff0 })).toThrow(/nsenter|No such file|pid/);
  });

  it('named namespaces: add, list, delete', () => {
    const name = `wgtsip-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    ipx.netnsAdd(name);
    try {
      expect(ipx.netnsList()).toContain(name);
      expect(() => ipx.netnsAdd(name)).toThrow(ipx.IpError);
    } finally {
      ipx.netnsDel(name, { ifExists: true });
    }
    expect(ipx.netnsList()).not.toContain(name);
    expect(() => ipx.netnsDel(name, { ifExists: true })).not.toThrow();
    expect(() => ipx.netnsAdd('../etc')).toThrow(/invalid netns name/);
  });

  it('moveLink moves and renames atomically; refuses a taken name', () => {
    ipx.vethAdd('tc0', 'tc1', { netnsPid: pid });
    ipx.moveLink('tc0', pid2, 'moved0', { netnsPid: pid });
    expect(ipx.linkExists('tc0', { netnsPid: pid })).toBe(false);
    expect(ipx.linkExists('moved0', { netnsPid: pid2 })).toBe(true);
    // The name is taken there now: the move fails and the link stays where it was.
    ipx.vethAdd('td0', 'td1', { netnsPid: pid });
    expect(() => ipx.moveLink('td0', pid2, 'moved0', { netnsPid: pid })).toThrow(/already exists/);
    expect(ipx.linkExists('td0', { netnsPid: pid })).toBe(true);
    expect(ipx.linkExists('td0', { netnsPid: pid2 })).toBe(false);
    // What the kernel does without that check: the link moves under its old name, and only the
    // rename fails (moveLink would bring it back).
    expect(() => ipx.ip(['link', 'set', 'dev', 'td0', 'netns', String(pid2), 'name', 'moved0'], { netnsPid: pid })).toThrow(/File exists/);
    expect(ipx.linkExists('td0', { netnsPid: pid2 })).toBe(true);
    expect(() => ipx.moveLink('td0', 0x3ffffff0, 'x0', { netnsPid: pid })).toThrow(/no process with pid/);
    expect(ipx.sameNetns(pid)).toBe(false);
    expect(ipx.sameNetns(process.pid)).toBe(true);
  });
});
