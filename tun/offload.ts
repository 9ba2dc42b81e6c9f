/**
 * Which offloads the I/O layer asks the kernel for. Each is negotiated at run time (a kernel
 * that refuses one runs without it, see docs/IO.md) and each can be switched off, for tests and
 * for kernels that misbehave: per object with `TunOptions.offload` / `UdpBindOptions.offload`,
 * or for the whole process with the environment variable
 *
 *     WGTS_DISABLE_OFFLOAD=all | comma-separated names of OFFLOAD_PARTS
 *
 * e.g. `WGTS_DISABLE_OFFLOAD=udp-gso,tun-gro`.
 */

/** The parts, by the names WGTS_DISABLE_OFFLOAD takes. */
export const OFFLOAD_PARTS = ['tso', 'uso', 'tun-gro', 'udp-gso', 'udp-gro'] as const;
export type OffloadPart = (typeof OFFLOAD_PARTS)[number];

export interface OffloadSettings {
  /** TUN: the kernel hands TCP super-packets (TSO4/TSO6) of up to 64 KiB, which we segment. */
  tso: boolean;
  /** TUN: the same for UDP (USO4/USO6, Linux 6.2). */
  uso: boolean;
  /** TUN: consecutive TCP (and, on kernels with USO, UDP) packets of one flow are coalesced into one write. */
  tunGro: boolean;
  /** UDP: runs of equal-size datagrams to one endpoint leave in one send (UDP_SEGMENT). */
  udpGso: boolean;
  /** UDP: the kernel hands runs of datagrams from one source as one buffer (UDP_GRO). */
  udpGro: boolean;
}

const KEYS: Record<OffloadPart, keyof OffloadSettings> = {
  tso: 'tso',
  uso: 'uso',
  'tun-gro': 'tunGro',
  'udp-gso': 'udpGso',
  'udp-gro': 'udpGro',
};

/** All on, less what WGTS_DISABLE_OFFLOAD (in `env`) switches off. Throws on an unknown name. */
export function offloadSettings(env: NodeJS.ProcessEnv = process.env): OffloadSettings {
  const s: OffloadSettings = { tso: true, uso: true, tunGro: true, udpGso: true, udpGro: true };
  const v = env.WGTS_DISABLE_OFFLOAD;
  if (v === undefined || v.trim() === '') return s;
  for (const raw of v.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    if (name === 'all') {
      for (const k of Object.values(KEYS)) s[k] = false;
      continue;
    }
    if (!(OFFLOAD_PARTS as readonly string[]).includes(name)) {
      throw new Error(`WGTS_DISABLE_OFFLOAD: unknown offload '${name}' (expected all or ${OFFLOAD_PARTS.join(', ')})`);
    }
    s[KEYS[name as OffloadPart]] = false;
  }
  return s;
}
