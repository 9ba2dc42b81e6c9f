/**
 * Logging in wireguard-go's style: LOG_LEVEL=verbose|debug|error|silent (default error),
 * lines like "DEBUG: 2026/11/22 10:00:00 (wg0) message". Never pass key material here.
 */
import type { Logger } from '../noise/types.js';

export type LogLevel = 'verbose' | 'error' | 'silent';

export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  switch (env.LOG_LEVEL) {
    case 'verbose':
    case 'debug':
      return 'verbose';
    case 'silent':
      return 'silent';
    default:
      return 'error';
  }
}

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function createLogger(level: LogLevel, prefix: string, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    verbose: level === 'verbose' ? (msg) => write(`DEBUG: ${stamp()} ${prefix}${msg}\n`) : () => {},
    error: level !== 'silent' ? (msg) => write(`ERROR: ${stamp()} ${prefix}${msg}\n`) : () => {},
  };
}
