/**
 * The service's ServiceOs on this host: TUN devices made here and moved into a container's
 * namespace by its descriptor, links configured there by rtnetlink (tun/netlink.ts: no `ip`,
 * no `nsenter`, no pid), UDP binds in the service's own namespace, and namespaces identified by
 * their cookie.
 */

import { formatIp } from '../../noise/iptext.js';
import * as nl from '../../tun/netlink.js';
import { RouteMonitor } from '../../tun/rtmon.js';
import { Tun } from '../../tun/tun.js';
import { UdpBind } from '../../tun/udp.js';
import type { ServiceOs } from './os.js';

function indexOf(nsFd: number, name: string): number {
  const i = nl.linkIndex(nsFd, name);
  if (i === 0) throw Object.assign(new Error(`no link ${name} in that namespace`), { code: 'ENODEV' });
  return i;
}

export function productionOs(): ServiceOs {
  return {
    identify(nsFd) {
      return { key: nl.netnsCookie(nsFd).toString(), inode: Number(nl.fdIdentity(nsFd).ino) };
    },
    linkExists: (nsFd, name) => nl.linkIndex(nsFd, name) !== 0,
    createTun: (nsFd, name, mtu) => Tun.create(name, { netnsFd: nsFd, mtu }),
    addAddress(nsFd, name, address, prefix) {
      nl.addAddress(nsFd, indexOf(nsFd, name), formatIp(address.family, address.bytes), prefix, { nodad: true });
    },
    setUp: (nsFd, name) => nl.setLinkUp(nsFd, indexOf(nsFd, name)),
    deleteLink: (nsFd, name) => {
      nl.deleteLink(nsFd, name, { ifExists: true });
    },
    openUdp: (port, options) => UdpBind.open(port, options),
    openRouteMonitor: () => RouteMonitor.shared(),
  };
}
