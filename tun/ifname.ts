/**
 * The one rule for Linux interface names, the kernel's dev_valid_name() plus no control
 * characters: 1..15 bytes (IFNAMSIZ - 1), not "." or "..", no '/', ':' or white space.
 */
export const IFNAME_MAX = 15;

/** What is wrong with `name` as an interface name, or null when it is valid. */
export function ifnameProblem(name: string): string | null {
  if (!name) return 'interface name is empty';
  if (Buffer.byteLength(name) > IFNAME_MAX) return `interface name '${name}' is longer than ${IFNAME_MAX} bytes`;
  if (name === '.' || name === '..' || /[/\s:]/.test(name) || /[\x00-\x1f\x7f]/.test(name)) {
    return `interface name '${name.replace(/[\x00-\x1f\x7f]/g, '?')}' is not valid`;
  }
  return null;
}

/** Throws an Error naming the problem unless `name` is a valid interface name. */
export function checkIfName(name: string): void {
  const why = ifnameProblem(name);
  if (why !== null) throw new Error(`invalid interface name: ${JSON.stringify(name)} (${why}; 1-${IFNAME_MAX} bytes, no '/', ':' or spaces)`);
}
