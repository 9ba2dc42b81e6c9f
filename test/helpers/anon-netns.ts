/**
 * Anonymous network namespaces for tests: each is held by an `unshare --net sleep` process,
 * so nothing shows up in `ip netns list`, and killing the holder destroys the namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as ipx from '../../tun/ip.js';
import { sleep } from './proc.js';

export interface Holder {
  readonly proc: ChildProcess;
  /** A pid whose /proc/PID/ns/net is the namespace. */
  readonly pid: number;
  /** Kill the holder, destroying the namespace (and the devices in it). */
  kill(): Promise<void>;
}

/** Holders made by one test file; `killAll()` in its afterAll. */
export class AnonNetns {
  private readonly holders: Holder[] = [];

  /** A new namespace with `lo` up. */
  async create(): Promise<Holder> {
    const proc = spawn('/usr/bin/unshare', ['--net', '--', '/bin/sleep', '300'], { stdio: 'ignore' });
    const pid = proc.pid;
    if (pid === undefined) throw new Error('unshare did not start');
    const h: Holder = {
      proc,
      pid,
      kill: () =>
        new Promise((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGKILL');
        }),
    };
    this.holders.push(h);
    const self = ipx.netnsInode('self');
    for (let i = 0; i < 200; i++) {
      try {
        if (ipx.netnsInode(pid) !== self) break;
      } catch {
        /* not yet */
      }
      await sleep(10);
    }
    if (ipx.netnsInode(pid) === self) throw new Error('unshare did not create a namespace');
    ipx.linkSetUp('lo', { netnsPid: pid });
    return h;
  }

  async killAll(): Promise<void> {
    for (const h of this.holders.splice(0)) await h.kill();
  }
}
