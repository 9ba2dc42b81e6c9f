/**
 * Leaving the caller's cgroups: a service started on demand by a cwg command must outlive
 * whoever ran that command, and container runtimes remove a container by killing every process
 * in its cgroups. The process moves itself into a cgroup `wireguard-ts` of its own in every
 * hierarchy it belongs to (/proc/self/cgroup: the v1 controllers and the v2 unified one).
 * A hierarchy that is not mounted where the process can see it (`ip netns exec` remounts /sys
 * without the cgroup file systems) is mounted for the moment on a private directory and
 * unmounted again; membership does not depend on the mount.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MOUNT = ['/usr/bin/mount', '/bin/mount'].find((p) => existsSync(p));
const UMOUNT = ['/usr/bin/umount', '/bin/umount'].find((p) => existsSync(p));

/** A hierarchy of /proc/self/cgroup: "4:memory:/a/b" (v1) or "0::/a/b" (v2). */
export interface Hierarchy {
  readonly id: number;
  /** "memory", "cpu,cpuacct", "name=systemd"; empty for v2. */
  readonly controllers: string;
}

export function hierarchies(text = readFileSync('/proc/self/cgroup', 'utf8')): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9]+):([^:]*):/.exec(line);
    if (m) out.push({ id: Number(m[1]), controllers: m[2]! });
  }
  return out;
}

/** Where each hierarchy is mounted in this mount namespace, from /proc/self/mountinfo. */
export function mountPoints(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Map<string, string> {
  const out = new Map<string, string>(); // controllers ("" for v2) -> mount point
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,... shared:15 - cgroup cgroup rw,memory"
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    const root = line.slice(0, sep).split(' ')[3];
    const point = line.slice(0, sep).split(' ')[4];
    if (point === undefined || root !== '/') continue;
    const unescaped = point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (fstype === 'cgroup2') out.set('', unescaped);
    else if (fstype === 'cgroup' && superOpts !== undefined) {
      const opts = superOpts.split(',');
      const name = opts.find((o) => o.startsWith('name='));
      const ctrls = opts.filter((o) => !['rw', 'ro'].includes(o) && !o.startsWith('name=') && !o.includes('=') && o !== 'noprefix' && o !== 'xattr');
      out.set(name ?? ctrls.sort().join(','), unescaped);
    }
  }
  return out;
}

function key(h: Hierarchy): string {
  if (h.controllers.startsWith('name=')) return h.controllers;
  return h.controllers.split(',').sort().join(',');
}

function mountArgs(h: Hierarchy): string[] {
  if (h.id === 0 && h.controllers === '') return ['-t', 'cgroup2', 'cgroup2'];
  const opts = h.controllers.startsWith('name=') ? `none,${h.controllers}` : h.controllers;
  return ['-t', 'cgroup', '-o', opts, 'cgroup'];
}

function join1(dir: string, name: string): void {
  const cg = join(dir, name);
  mkdirSync(cg, { recursive: true, mode: 0o755 });
  // A v1 cpuset cgroup takes no process until it has CPUs and memory nodes: the parent's.
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const mine = join(cg, f);
    if (existsSync(mine) && readFileSync(mine, 'utf8').trim() === '') writeFileSync(mine, readFileSync(join(dir, f), 'utf8'));
  }
  appendFileSync(join(cg, 'cgroup.procs'), `${process.pid}\n`);
}

/**
 * Move this process into `<hierarchy>/<name>` of every hierarchy it is in. Returns the
 * hierarchies it could not leave, each with the reason.
 */
export function leaveCallerCgroups(name = 'wireguard-ts', scratchBase = '/run'): string[] {
  const failed: string[] = [];
  let hs: Hierarchy[];
  let mounted: Map<string, string>;
  try {
    hs = hierarchies();
    mounted = mountPoints();
  } catch (e) {
    return [`/proc/self: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`];
  }
  for (const h of hs) {
    const what = h.controllers || 'unified';
    const point = mounted.get(key(h));
    try {
      if (point !== undefined) {
        join1(point, name);
        continue;
      }
      if (!MOUNT || !UMOUNT) throw new Error('mount(8) not found');
      const dir = mkdtempSync(join(scratchBase, 'wireguard-ts-cgroup-'));
      try {
        const r = spawnSync(MOUNT, [...mountArgs(h), dir], { stdio: ['ignore', 'ignore', 'pipe'], env: {}, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`mount: ${(r.stderr || '').trim().split('\n')[0]}`);
        try {
          join1(dir, name);
        } finally {
          spawnSync(UMOUNT, ['-l', dir], { stdio: 'ignore', env: {} });
        }
      } finally {
        rmdirSync(dir);
      }
    } catch (e) {
      failed.push(`${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return failed;
}
