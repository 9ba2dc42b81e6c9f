/**
 * iproute2 helpers that need no privileges: binary paths, namespace inodes of our own process,
 * name validation, and argument passing (test/system/ip-helpers.test.ts has the rest).
 */
import { describe, expect, it } from 'vitest';
import { checkIfName } from '../../tun/ifname.js';
import * as ipx from '../../tun/ip.js';

describe('ip helpers without privileges', () => {
  it('resolves absolute paths', () => {
    expect(ipx.ipBinary()).toMatch(/^\/(usr\/)?s?bin\/ip$/);
    expect(ipx.nsenterBinary()).toMatch(/^\/.*\/nsenter$/);
  });

  it('netnsInode: our own, and clear errors for bad pids', () => {
    expect(ipx.netnsInode('self')).toBe(ipx.netnsInode(process.pid));
    expect(() => ipx.netnsInode(0x3ffffff0)).toThrow(/no process with pid 1073741808/);
    expect(() => ipx.netnsInode(-1)).toThrow(/invalid pid/);
    expect(() => ipx.netnsInode(1.5)).toThrow(/invalid pid/);
  });

  it('validates interface names like the kernel', () => {
    for (const bad of ['', 'a'.repeat(16), 'a/b', 'a b', 'a:b', '.', '..']) {
      expect(() => checkIfName(bad)).toThrow(/invalid interface name/);
    }
    expect(() => checkIfName('a'.repeat(15))).not.toThrow();
  });

  it('passes arguments literally (no shell)', () => {
    // A shell would run the substitution; ip just looks for a device with this odd name.
    expect(ipx.linkExists('$(touch_x);a')).toBe(false);
  });
});
