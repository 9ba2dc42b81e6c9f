/**
 * Running synchronous code inside another network namespace: the main thread setns(2)es into
 * /proc/PID/ns/net, runs `fn`, and comes back before anything else can run. Sockets created
 * by `fn` stay in that namespace for their whole life (e.g. `UdpBind.open(port, { netnsPid })`).
 */
import { native } from './addon.js';

export function inNetns<T>(pid: number, fn: () => T): T {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`invalid pid: ${String(pid)}`);
  const addon = native();
  let saved: number;
  try {
    saved = addon.netnsEnter(pid);
  } catch (e) {
    throw new Error(`cannot enter the network namespace of pid ${pid}: ${(e as Error).message}`);
  }
  let result: T;
  try {
    result = fn();
  } finally {
    addon.netnsRestore(saved);
  }
  if (result instanceof Promise) throw new Error('inNetns: fn must be synchronous');
  return result;
}
