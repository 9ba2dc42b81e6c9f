/**
 * The addon's rtnetlink (tun/netlink.ts) in anonymous namespaces made here, checked against
 * iproute2; namespace cookies; and the service's pattern: a TUN opened here, moved into a
 * container's namespace by fd, our fd to that namespace closed: the namespace still dies with
 * its last process, and takes the device with it. Needs root.
 */
import { closeSync, existsSync, openSync, readlinkSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../../tun/addon.js';
import { ControlConnection, ControlListener } from '../../tun/control.js';
import * as ipx from '../../tun/ip.js';
import * as nl from '../../tun/netlink.js';
import { Tun, tempName } from '../../tun/tun.js';
import { AnonNetns, type Holder } from '../helpers/anon-netns.js';
import { uniqueName } from '../helpers/client-build.js';
import { uniqueTag } from '../helpers/netns.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const why = canRun ? '' : ' (skipped: needs root and /dev/net/tun)';

const netns = new AnonNetns();
const fds: number[] = [];
const tunFds: number[] = [];
const tuns: Tun[] = [];

afterAll(async () => {
  for (const t of tuns.splice(0)) t.close();
  for (const fd of tunFds.splice(0)) native().fdClose(fd);
  for (const fd of fds.splice(0)) closeSync(fd);
  await netns.killAll();
});

function nsFdOf(h: Holder): number {
  const fd = openSync(`/proc/${h.pid}/ns/net`, 'r');
  fds.push(fd);
  return fd;
}

function dropFd(fd: number): void {
  const i = fds.indexOf(fd);
  if (i >= 0) fds.splice(i, 1);
  closeSync(fd);
}

/** A TUN device here under a unique temporary name: [its fd, its name, its index]. */
function tunHere(): [number, string, number] {
  const [fd, name] = native().tunOpen(tempName());
  tunFds.push(fd);
  return [fd, name, nl.linkIndex(nl.CURRENT_NETNS, name)];
}

const selfNs = () => readlinkSync('/proc/thread-self/ns/net');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!canRun)(`netlink in namespaces given by fd${why}`, () => {
  it('finds links by name in the namespace of an fd, 0 when there is none', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    expect(nl.linkIndex(fd, 'lo')).toBe(1);
    expect(nl.linkIndex(fd, 'nope0')).toBe(0);
    const [, name, index] = tunHere();
    expect(index).toBeGreaterThan(0);
    expect(nl.linkIndex(nl.CURRENT_NETNS, name)).toBe(ipx.linkIndex(name));
    expect(nl.linkIndex(fd, name)).toBe(0);
  });

  it('moves a link into the namespace and renames it in one request; address and up as ip shows them', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    const [tfd, tmp, index] = tunHere();
    const name = `wgnl${uniqueTag()}`;
    const there = nl.moveLink(index, fd, name);
    expect(there).toBe(nl.linkIndex(fd, name));
    expect(ipx.linkExists(tmp)).toBe(false);
    expect(ipx.linkIndex(name, { netnsPid: h.pid })).toBe(there);
    expect(native().tunProbe(tfd)).toBe(name);
    nl.addAddress(fd, there, '10.77.0.1', 31);
    nl.addAddress(fd, there, 'fd77::1', 64, { nodad: true });
    nl.setLinkUp(fd, there);
    nl.setLinkMtu(fd, name, 1380);
    const addr = ipx.ip(['-o', 'addr', 'show', 'dev', name], { netnsPid: h.pid });
    expect(addr).toMatch(/inet 10\.77\.0\.1\/31 /);
    expect(addr).toMatch(/inet6 fd77::1\/64 scope global nodad/);
    const link = ipx.ip(['-o', 'link', 'show', 'dev', name], { netnsPid: h.pid });
    expect(link).toMatch(/<[^>]*\bUP\b[^>]*>/);
    expect(link).toMatch(/ mtu 1380 /);
    expect(ipx.ip(['-4', 'route', 'show', 'dev', name], { netnsPid: h.pid })).toMatch(/^10\.77\.0\.0\/31 /m);
    expect(() => nl.addAddress(fd, there, '10.77.0.1', 31)).toThrow(
      expect.objectContaining({ code: 'EEXIST', message: expect.stringMatching(/^add address 10\.77\.0\.1\/31 to link \d+: File exists/) }),
    );
    expect(nl.deleteLink(fd, name)).toBe(true);
    expect(ipx.linkExists(name, { netnsPid: h.pid })).toBe(false);
    expect(nl.deleteLink(fd, name, { ifExists: true })).toBe(false);
    expect(() => nl.deleteLink(fd, name)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });

  it('fails a move with EEXIST when the name is taken there, and nothing moves', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    const taken = `wgnl${uniqueTag()}`;
    ipx.vethAdd(taken, `${taken}p`, { netnsPid: h.pid });
    const [, tmp, index] = tunHere();
    expect(() => nl.moveLink(index, fd, taken)).toThrow(
      expect.objectContaining({ code: 'EEXIST', message: expect.stringMatching(/File exists; a link of that name exists there$/) }),
    );
    expect(nl.linkIndex(nl.CURRENT_NETNS, tmp)).toBe(index);
    expect(nl.linkIndex(fd, tmp)).toBe(0);
  });

  it('the kernel alone would strand the link there under its old name; the addon moves it back', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    const taken = `wgnl${uniqueTag()}`;
    ipx.vethAdd(taken, `${taken}p`, { netnsPid: h.pid });
    const [tfd, tmp, index] = tunHere();
    // Without the name check first, as when the name appears between the check and the move.
    expect(() => native().nlLinkMove(index, fd, taken, false)).toThrow(
      expect.objectContaining({ code: 'EEXIST', message: expect.stringMatching(/File exists.*; the link was moved back$/) }),
    );
    expect(ipx.linkExists(tmp, { netnsPid: h.pid })).toBe(false);
    expect(ipx.linkExists(tmp)).toBe(true);
    expect(native().tunProbe(tfd)).toBe(tmp);
  });

  it('names the operation, keeps the errno as code, and returns the thread to its namespace on every path', async () => {
    const before = selfNs();
    const cookie = nl.netnsCookie(nl.CURRENT_NETNS);
    const devnull = openSync('/dev/null', 'r');
    fds.push(devnull);
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => nl.linkIndex(devnull, 'lo'), 'EINVAL', /^index of link lo: netlink socket in the network namespace of fd \d+: Invalid argument$/],
      [() => nl.setLinkUp(nl.CURRENT_NETNS, 0x7ffffff0), 'ENODEV', /^set link 2147483632 up: No such device/],
      [() => nl.moveLink(0x7ffffff0, devnull, 'wgx0'), 'EINVAL', /^move link 2147483632 into the network namespace of fd \d+ as wgx0: /],
      [() => nl.netnsCookie(9999), 'EBADF', /^network namespace cookie: socket in the network namespace of fd 9999: Bad file descriptor$/],
      [() => nl.addAddress(nl.CURRENT_NETNS, 0x7ffffff0, '10.0.0.1', 24), 'ENODEV', /^add address 10\.0\.0\.1\/24 to link 2147483632: No such device/],
    ];
    for (const [f, code, msg] of cases) {
      expect(f).toThrow(expect.objectContaining({ code, message: expect.stringMatching(msg) }));
      expect(selfNs()).toBe(before);
    }
    const h = await netns.create();
    const fd = nsFdOf(h);
    const [, , index] = tunHere();
    expect(() => nl.moveLink(index, fd, 'lo')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(selfNs()).toBe(before);
    expect(nl.netnsCookie(nl.CURRENT_NETNS)).toBe(cookie);
    expect(() => nl.linkIndex(-2, 'lo')).toThrow(TypeError);
    expect(() => nl.addAddress(fd, 1, '10.0.0.256', 24)).toThrow(TypeError);
    expect(() => nl.addAddress(fd, 1, '10.0.0.1', 33)).toThrow(TypeError);
    expect(() => nl.moveLink(1, fd, 'bad/name')).toThrow(/invalid interface name/);
  });

  it('cookies: stable, the same for every fd of a namespace, different between namespaces, never reused', async () => {
    const own = openSync('/proc/self/ns/net', 'r');
    fds.push(own);
    expect(nl.netnsCookie(own)).toBe(nl.netnsCookie(nl.CURRENT_NETNS));
    const seen = new Set<bigint>([nl.netnsCookie(nl.CURRENT_NETNS)]);
    for (let i = 0; i < 4; i++) {
      const h = await netns.create();
      const a = nsFdOf(h);
      const b = nsFdOf(h);
      const c = nl.netnsCookie(a);
      expect(typeof c).toBe('bigint');
      expect(nl.netnsCookie(a)).toBe(c);
      expect(nl.netnsCookie(b)).toBe(c);
      const st = statSync(`/proc/${h.pid}/ns/net`);
      expect(nl.fdIdentity(a)).toEqual({ dev: BigInt(st.dev), ino: BigInt(st.ino) });
      expect(seen.has(c)).toBe(false);
      seen.add(c);
      dropFd(a);
      dropFd(b);
      await h.kill(); // its namespace goes; the next one must not get its cookie
    }
  });

  it('a TUN moved into a namespace by fd dies with the namespace once our fd to it is closed', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    const name = `wgnl${uniqueTag()}`;
    const tun = Tun.create(name, { netnsFd: fd });
    tuns.push(tun);
    expect(ipx.linkExists(name, { netnsPid: h.pid })).toBe(true);
    tun.setMtu(1300);
    expect(ipx.getMtu(name, { netnsPid: h.pid })).toBe(1300);
    const again = (() => {
      try {
        Tun.create(name, { netnsFd: fd });
        return null;
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
    })();
    expect(again?.code).toBe('EEXIST');
    expect(again?.message).toBe(`TUN ${name}: cannot create it in the network namespace of fd ${fd}: a device of that name already exists there`);
    dropFd(fd); // the service's pattern: nothing of ours refers to the namespace any more
    const removed = new Promise<string>((r) => tun.onRemoved(r));
    const t0 = Date.now();
    await h.kill();
    const reason = await Promise.race([removed, sleep(5000).then(() => 'still there after 5 s')]);
    expect(reason).toMatch(/removed \(TUNGETIFF: EBADFD/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('control sockets are per namespace: a name bound in one is not reachable from another', async () => {
    const h = await netns.create();
    const fd = nsFdOf(h);
    const name = uniqueName('ns');
    const l = ControlListener.listen(name, { netnsFd: fd });
    try {
      expect(() => ControlConnection.connect(name)).toThrow(expect.objectContaining({ code: 'ECONNREFUSED' }));
      const c = ControlConnection.connect(name, { netnsFd: fd });
      expect(c.peer.pid).toBe(process.pid);
      c.close();
      const here = ControlListener.listen(name); // the same name, another namespace: no clash
      here.close();
    } finally {
      l.close();
    }
  });
});
