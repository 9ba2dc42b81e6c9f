/**
 * Leaving the caller's cgroups: a service started on demand by a cwg command must outlive
 * whoever ran that command, and container runtimes remove a container by killing every process
 * in its cgroups. The process moves itself into a cgroup `wireguard-ts` of its own in every
 * cgroup hierarchy of the host (v1 controllers and the v2 unified one), found in pid 1's mount
 * table and reached through /proc/1/root, so that it works from a private mount namespace too
 * (`ip netns exec` remounts /sys without the cgroup file systems).
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Mount points of the host's cgroup file systems (v1 and v2), from pid 1's mountinfo. */
export function cgroupMounts(mountinfo = readFileSync('/proc/1/mountinfo', 'utf8')): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,... shared:15 - cgroup cgroup rw,memory"
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const point = line.slice(0, sep).split(' ')[4];
    if (point !== undefined) out.push(point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

/**
 * Move this process into `<hierarchy>/<name>` of every hierarchy. Returns the hierarchies it
 * could not join (each with the reason): the caller decides whether that matters.
 */
export function leaveCallerCgroups(name = 'wireguard-ts', root = '/proc/1/root'): string[] {
  const failed: string[] = [];
  let mounts: string[];
  try {
    mounts = cgroupMounts(readFileSync(join('/proc/1/mountinfo'), 'utf8'));
  } catch (e) {
    return [`/proc/1/mountinfo: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`];
  }
  for (const m of mounts) {
    const dir = join(root, m, name);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      appendFileSync(join(dir, 'cgroup.procs'), `${process.pid}\n`);
    } catch (e) {
      failed.push(`${m}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return failed;
}
