/**
 * Linux errno values, as the addon reports them (negated in return values, as `.code` names in
 * thrown Errors) and as the UAPI carries them.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOANO: 55,
  EPROTO: 71,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  EHOSTUNREACH: 113,
  EBADFD: 77,
} as const;

/** "EBADFD" for 77 etc.; the number as text when unknown. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  for (const [k, v] of Object.entries(Errno)) if (v === n) return k;
  return `errno ${n}`;
}
