/**
 * The standard process metrics of Prometheus client libraries (process_*), for the daemon's or
 * the service's own process: memory, CPU time, start time, descriptors.
 */
import { readdirSync } from 'node:fs';
import type { Exposition } from './exposition.js';

const startTime = Date.now() / 1000 - process.uptime();

export function addProcessMetrics(x: Exposition): void {
  x.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.').add({}, process.memoryUsage.rss());
  const cpu = process.cpuUsage();
  x.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.').add({}, (cpu.user + cpu.system) / 1e6);
  x.family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.').add({}, Math.round(startTime * 1000) / 1000);
  let fds: number | null = null;
  try {
    fds = readdirSync('/proc/self/fd').length - 1; // the directory's own descriptor
  } catch {
    /* no /proc: left out */
  }
  if (fds !== null) x.family('process_open_fds', 'gauge', 'Number of open file descriptors.').add({}, fds);
}
