import { readdirSync } from 'node:fs';
import { tempPrefixPid } from '../../tun/tun.js';

/** Temporary TUN devices of this process left in our namespace (others' tests may have theirs in flight). */
export function leftoverTemps(): string[] {
  return readdirSync('/sys/class/net').filter((n) => n.startsWith('wgt' + tempPrefixPid()));
}
