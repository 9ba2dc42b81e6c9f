/**
 * Crash recovery: a service started again makes every recorded device whose container
 * namespace still exists again, with the same key, address, port and peer, and forgets the
 * records of namespaces that are gone. A namespace is found again without trusting any pid:
 * the record holds the namespace's cookie, which is never reused; processes whose
 * /proc/PID/ns/net has the recorded inode are candidates, and the cookie of the descriptor
 * actually opened decides. Descriptors are closed at once: the service never keeps a
 * container's namespace alive.
 */
import { closeSync, constants as fsc, openSync, readdirSync, statSync } from 'node:fs';
import type { Logger } from '../../noise/types.js';
import { hostCidr } from '../cwg/addressing.js';
import type { ServiceOs } from './os.js';
import type { Registry } from './registry.js';
import type { DeviceRecord, StateStore } from './state.js';

/** Open the namespace whose cookie is `key` (and inode `inode`), or null when it is gone. */
export function findNamespace(os: ServiceOs, key: string, inode: number): number | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const p of pids) {
    if (!/^[0-9]+$/.test(p)) continue;
    const path = `/proc/${p}/ns/net`;
    try {
      if (statSync(path).ino !== inode) continue;
      const fd = openSync(path, fsc.O_RDONLY); // libuv opens every file O_CLOEXEC
      try {
        if (os.identify(fd).key === key) return fd;
      } catch {
        /* not a namespace we can read */
      }
      closeSync(fd);
    } catch {
      /* the process went, or is not ours to see */
    }
  }
  return null;
}

export interface RecoveryResult {
  recovered: number;
  /** Records of namespaces that are gone, deleted. */
  forgotten: number;
  /** Records whose device could not be made again (logged; deleted). */
  failed: number;
}

/** Make the recorded devices again (see the header). */
export async function recover(os: ServiceOs, state: StateStore, registry: Registry, logger: Logger): Promise<RecoveryResult> {
  const result: RecoveryResult = { recovered: 0, forgotten: 0, failed: 0 };
  for (const r of state.load()) {
    const fd = findNamespace(os, r.nsKey, r.nsInode);
    if (fd === null) {
      state.delete(r.nsKey, r.name);
      result.forgotten++;
      logger.verbose(`recovery: the namespace of ${r.name} is gone; record deleted`);
      continue;
    }
    try {
      await recreate(os, fd, r, registry);
      result.recovered++;
    } catch (e) {
      state.delete(r.nsKey, r.name);
      result.failed++;
      logger.error(`recovery: cannot make ${r.name} again: ${(e as Error).message}`);
    } finally {
      closeSync(fd);
    }
  }
  return result;
}

async function recreate(os: ServiceOs, fd: number, r: DeviceRecord, registry: Registry): Promise<void> {
  // The killed service's TUN went with it (a TUN fd closed deletes its device); a link of that
  // name there now is not ours to take over.
  if (os.linkExists(fd, r.name)) throw new Error(`a link named ${r.name} exists in its namespace`);
  const cidr = hostCidr(r.net, r.host);
  await registry.create(fd, {
    ns: { key: r.nsKey, inode: r.nsInode },
    name: r.name,
    net: r.net,
    host: r.host,
    cidr,
    port: r.port,
    privateKey: r.privateKey,
    peer: r.peer,
  });
}
