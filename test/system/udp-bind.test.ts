/**
 * UdpBind's sticky source (PKTINFO in and out, fallback when the address is gone), IPv6
 * link-local scopes and fwmark, in a namespace of our own with two addresses per family. Needs
 * root; test/unit/udp-bind.test.ts has the loopback cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../noise/types.js';
import * as ipx from '../../tun/ip.js';
import { AnonNetns } from '../helpers/anon-netns.js';
import { addonBuilt, isRoot, sleep, waitUntil } from '../helpers/proc.js';
import { OpenBinds } from '../helpers/udp.js';

const binds = new OpenBinds();
const ignoreBatch = (): void => {};
const netns = new AnonNetns();
const newNetns = async (): Promise<number> => (await netns.create()).pid;

afterAll(async () => {
  binds.closeAll();
  await netns.killAll();
});

describe.skipIf(!addonBuilt || !isRoot)('UdpBind sticky source and fwmark (own namespace)' + (isRoot ? '' : ' (skipped: needs root)'), () => {
  let pid = 0;
  let ifindex = 0;
  beforeAll(async () => {
    pid = await newNetns();
    const o = { netnsPid: pid };
    // A veth pair gives the namespace a non-loopback link to hold two addresses per family.
    ipx.vethAdd('st0', 'st1', o);
    ipx.linkSetUp('st0', o);
    ipx.linkSetUp('st1', o);
    for (const a of ['192.0.2.1/24', '192.0.2.2/24']) ipx.addrAdd('st0', a, o);
    for (const a of ['fd00:77::1/64', 'fd00:77::2/64']) ipx.addrAdd('st0', a, { ...o, nodad: true });
    ifindex = ipx.linkIndex('st0', o);
  });

  for (const [family, a1, a2, cidr2] of [
    [4, '192.0.2.1', '192.0.2.2', '192.0.2.2/24'],
    [6, 'fd00:77::1', 'fd00:77::2', 'fd00:77::2/64'],
  ] as const) {
    it(`IPv${family}: reports the local address, replies from it, falls back when it is removed`, async () => {
      const A = binds.open(0, { netnsPid: pid });
      const B = binds.open(0, { netnsPid: pid });
      const rxA: Endpoint[] = [];
      const rxB: Endpoint[] = [];
      const sticky: Endpoint[] = [];
      A.start((_d, f) => rxA.push(f), ignoreBatch);
      B.start((_d, f) => rxB.push(f), ignoreBatch);
      B.onStickyFailure((ep) => sticky.push(ep));

      // A -> B at the second address: B learns localAddress a2.
      A.send(new Uint8Array([1]), { address: a2, port: B.port, family });
      A.flush();
      await waitUntil('the datagrams', () => rxB.length === 1);
      expect(rxB[0]).toMatchObject({ port: A.port, family, localAddress: a2, ifindex });

      // B replies to A's first address with the sticky source a2: it leaves from a2.
      const ep: Endpoint = { address: a1, port: A.port, family, localAddress: a2, ifindex };
      B.send(new Uint8Array([2]), ep);
      B.flush();
      await waitUntil('the datagrams', () => rxA.length === 1);
      expect(rxA[0]).toMatchObject({ address: a2, port: B.port, localAddress: a1 });

      // Without a sticky source the routing table picks a1 (the primary address).
      B.send(new Uint8Array([3]), { address: a1, port: A.port, family });
      B.flush();
      await waitUntil('the datagrams', () => rxA.length === 2);
      expect(rxA[1]!.address).toBe(a1);

      // a2 removed: the kernel refuses it (ENETUNREACH / EINVAL); sent anyway, failure reported.
      ipx.addrDel('st0', cidr2, { netnsPid: pid });
      try {
        B.send(new Uint8Array([4]), ep);
        expect(B.flush()).toBe(1);
        expect(sticky).toEqual([ep]);
        expect(sticky[0]).toBe(ep);
        expect(B.stats.stickyFailures).toBe(1);
        expect(B.stats.sendErrors).toBe(0);
        await waitUntil('the datagrams', () => rxA.length === 3);
        expect(rxA[2]!.address).toBe(a1);
      } finally {
        ipx.addrAdd('st0', cidr2, { netnsPid: pid, nodad: true });
      }
      A.close();
      B.close();
    });
  }

  it('IPv6 link-local: the scope comes from ifindex, both ways across the veth', async () => {
    const o = { netnsPid: pid };
    ipx.addrAdd('st0', 'fe80::a1/64', { ...o, nodad: true });
    ipx.addrAdd('st1', 'fe80::a2/64', { ...o, nodad: true });
    const i0 = ipx.linkIndex('st0', o);
    const i1 = ipx.linkIndex('st1', o);
    const A = binds.open(0, o);
    const B = binds.open(0, o);
    const rxA: Endpoint[] = [];
    const rxB: Endpoint[] = [];
    A.start((_d, f) => rxA.push(f), ignoreBatch);
    B.start((_d, f) => rxB.push(f), ignoreBatch);
    // Out of st0, over the veth, in on st1.
    A.send(new Uint8Array([1]), { address: 'fe80::a2', port: B.port, family: 6, ifindex: i0 });
    expect(A.flush()).toBe(1);
    await waitUntil('the datagrams', () => rxB.length === 1);
    expect(rxB[0]).toEqual({ address: 'fe80::a1', port: A.port, family: 6, localAddress: 'fe80::a2', ifindex: i1 });
    // The reply goes back with the learnt scope and sticky source.
    B.send(new Uint8Array([2]), rxB[0]!);
    expect(B.flush()).toBe(1);
    await waitUntil('the datagrams', () => rxA.length === 1);
    expect(rxA[0]).toEqual({ address: 'fe80::a2', port: B.port, family: 6, localAddress: 'fe80::a1', ifindex: i0 });
    A.close();
    B.close();
  });

  it('fwmark: a rule for the mark steers sends; setFwmark changes it', async () => {
    const o = { netnsPid: pid };
    // Marked packets hit an `unreachable` rule placed before the local table (our namespace).
    ipx.ip(['rule', 'add', 'pref', '100', 'lookup', 'local'], o);
    ipx.ip(['rule', 'del', 'pref', '0', 'lookup', 'local'], o);
    ipx.ip(['rule', 'add', 'pref', '10', 'fwmark', '0x5a', 'unreachable'], o);
    const A = binds.open(0, { netnsPid: pid, fwmark: 0x5a });
    const B = binds.open(0, { netnsPid: pid });
    const got: number[] = [];
    B.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    const to: Endpoint = { address: '192.0.2.1', port: B.port, family: 4 };
    A.send(new Uint8Array([1]), to);
    expect(A.flush()).toBe(0);
    expect(A.stats.sendErrors).toBe(1);
    A.setFwmark(0);
    A.send(new Uint8Array([2]), to);
    expect(A.flush()).toBe(1);
    A.setFwmark(0x5a);
    A.send(new Uint8Array([3]), to);
    expect(A.flush()).toBe(0);
    await waitUntil('the datagrams', () => got.length === 1);
    await sleep(20);
    expect(got).toEqual([2]);
    A.close();
    B.close();
  });
});
