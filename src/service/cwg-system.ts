/**
 * The CwgSystem of one request to the service: the caller as the kernel vouched for it
 * (SO_PEERCRED / SO_PEERGROUPS), the namespace descriptor it sent (never a pid), the
 * administrator's policy, and the registry.
 */

import { Errno, errnoName } from '../../tun/errno.js';
import type { CreateSpec, CwgDevice, CwgNamespace, CwgSystem } from '../cwg/commands.js';
import type { CwgConfig } from '../cwg/config.js';
import { CwgError } from '../cwg/errors.js';
import type { NetnsIdentity, ServiceOs } from './os.js';
import type { Registry } from './registry.js';

/** What the client could do about the namespace (docs/SERVICE.md: `fd`, `none`, `errno:N`). */
export type NsInput = { readonly kind: 'fd'; readonly fd: number } | { readonly kind: 'none' } | { readonly kind: 'errno'; readonly errno: number };

/** The caller, from the kernel's credentials of the connection. */
export interface Caller {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

export interface RequestContext {
  readonly caller: Caller;
  readonly ns: NsInput;
  readonly config: CwgConfig;
  /** The gid of config.group, or null when unset or unknown. */
  readonly allowedGid: number | null;
  readonly os: ServiceOs;
  readonly registry: Registry;
  /** Namespaces no device may go into unless the configuration allows it: the service's own, pid 1's. */
  readonly hostNamespaces: ReadonlyMap<string, string>;
}

export function authorized(caller: Caller, allowedGid: number | null): boolean {
  if (caller.uid === 0) return true;
  return allowedGid !== null && (caller.gid === allowedGid || caller.groups.includes(allowedGid));
}

export function requestSystem(rc: RequestContext): CwgSystem {
  const nsFd = (ns: CwgNamespace): number => {
    if (rc.ns.kind !== 'fd') throw new CwgError(`no namespace for pid ${ns.pid}`);
    return rc.ns.fd;
  };
  return {
    checkPrivileges() {
      if (authorized(rc.caller, rc.allowedGid)) return;
      const also = rc.config.group !== null ? ` or as a member of group ${rc.config.group}` : '';
      throw new CwgError(`must be run as root${also} (it creates network devices in other network namespaces)`);
    },
    namespace(pid) {
      const ns = rc.ns;
      if (ns.kind === 'errno') {
        if (ns.errno === Errno.ENOENT || ns.errno === Errno.ESRCH) throw new CwgError(`no process with pid ${pid} (no /proc/${pid}/ns/net)`);
        if (ns.errno === Errno.EACCES || ns.errno === Errno.EPERM) {
          throw new CwgError(`cannot access the network namespace of pid ${pid} (${errnoName(ns.errno)})`);
        }
        throw new CwgError(`cannot open /proc/${pid}/ns/net (errno ${ns.errno})`);
      }
      if (ns.kind === 'none') throw new CwgError(`the client sent no network namespace for pid ${pid}`);
      let id: NetnsIdentity;
      try {
        id = rc.os.identify(ns.fd);
      } catch (e) {
        throw new CwgError(`/proc/${pid}/ns/net is not a network namespace (${(e as Error).message})`);
      }
      const host = rc.hostNamespaces.get(id.key);
      if (host !== undefined && !rc.config.allowHostNamespace) {
        throw new CwgError(
          `the network namespace of pid ${pid} is ${host}, not a container's; refusing to put a device there (allow_host_namespace = true in the configuration allows it)`,
        );
      }
      return { pid, key: id.key, inode: id.inode };
    },
    device(ns, name): CwgDevice | null {
      return rc.registry.get(ns.key, name);
    },
    linkExists(ns, name) {
      return rc.os.linkExists(nsFd(ns), name);
    },
    async createDevice(spec: CreateSpec): Promise<CwgDevice> {
      return rc.registry.create(nsFd(spec.ns), {
        ns: { key: spec.ns.key, inode: spec.ns.inode },
        name: spec.name,
        net: spec.net,
        host: spec.host,
        cidr: spec.cidr,
        port: spec.port,
        privateKey: spec.privateKey,
      });
    },
    async destroyDevice(ns, name) {
      const d = rc.registry.get(ns.key, name);
      if (d !== null) {
        await rc.registry.destroy(d);
        return true;
      }
      const fd = nsFd(ns);
      if (!rc.os.linkExists(fd, name)) return false;
      rc.os.deleteLink(fd, name);
      return true;
    },
  };
}
