/**
 * Linux errno values, as the addon reports them (negated in return values, as `.code` names in
 * thrown Errors) and as the UAPI carries them.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EPIPE: 32,
  ENOANO: 55,
  EPROTO: 71,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EBADFD: 77,
} as const;

/** "EBADFD" for 77 etc.; the number as text when unknown. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  for (const [k, v] of Object.entries(Errno)) if (v === n) return k;
  return `errno ${n}`;
}
