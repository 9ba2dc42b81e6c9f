/**
 * The messages of the host service's control protocol (docs/SERVICE.md): one SOCK_SEQPACKET
 * packet each, at most 65536 bytes, fields separated by NUL bytes, the first field `WGTS1`.
 * Pure codec, no I/O; the C client (csrc/helper/net-admin-helper.c) speaks the same bytes.
 */

/** The service's abstract socket name (no leading NUL here: the addon adds it). */
export const CONTROL_NAME = 'wireguard-ts/control';
export const PROTOCOL_TAG = 'WGTS1';
/** Largest message in either direction. */
export const MAX_MESSAGE = 65536;
/** The service sends `wait` at least this often while a request is queued or running. */
export const HEARTBEAT_MS = 1000;
/** A client that hears nothing for this long gives up. */
export const SILENCE_MS = 5000;

/** What the client could do about the container's namespace (the request's second field). */
export type NsField = { kind: 'fd' } | { kind: 'none' } | { kind: 'errno'; errno: number };

export interface ControlRequest {
  ns: NsField;
  /** The command line after the program name, unchanged (may be empty). */
  args: string[];
}

export type ControlResponse = { kind: 'wait' } | { kind: 'done'; code: number; stdout: string; stderr: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function join(fields: readonly string[]): Uint8Array {
  for (const f of fields) if (f.includes('\0')) throw new RangeError('control message field contains NUL');
  const bytes = encoder.encode(fields.join('\0'));
  if (bytes.length > MAX_MESSAGE) throw new RangeError(`control message of ${bytes.length} bytes (at most ${MAX_MESSAGE})`);
  return bytes;
}

function split(bytes: Uint8Array): string[] {
  return decoder.decode(bytes).split('\0');
}

/** A canonical decimal in [min, max]: digits only, no leading zero. */
function canonical(s: string, min: number, max: number): number | null {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(s)) return null;
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}

function nsText(ns: NsField): string {
  if (ns.kind === 'errno') {
    if (canonical(String(ns.errno), 1, 4095) === null) throw new RangeError(`invalid errno ${ns.errno}`);
    return `errno:${ns.errno}`;
  }
  return ns.kind;
}

export function encodeRequest(req: ControlRequest): Uint8Array {
  return join([PROTOCOL_TAG, nsText(req.ns), ...req.args]);
}

/** The request, or why it is malformed (bad tag, bad namespace field). */
export function decodeRequest(bytes: Uint8Array): { ok: true; request: ControlRequest } | { ok: false; reason: string } {
  if (bytes.length > MAX_MESSAGE) return { ok: false, reason: 'message too long' };
  const [tag, ns, ...args] = split(bytes);
  if (tag !== PROTOCOL_TAG) return { ok: false, reason: 'not a WGTS1 message' };
  if (ns === 'fd' || ns === 'none') return { ok: true, request: { ns: { kind: ns }, args } };
  const m = ns === undefined ? null : /^errno:(.*)$/.exec(ns);
  const errno = m ? canonical(m[1]!, 1, 4095) : null;
  if (errno === null) return { ok: false, reason: 'bad namespace field' };
  return { ok: true, request: { ns: { kind: 'errno', errno }, args } };
}

const WAIT = join([PROTOCOL_TAG, 'wait']);

/** The heartbeat. A fresh copy each time: the caller may reuse or transfer it. */
export function encodeWait(): Uint8Array {
  return WAIT.slice();
}

/** The answer; stdout and stderr must not contain NUL, and the whole must fit 65536 bytes. */
export function encodeDone(code: number, stdout: string, stderr: string): Uint8Array {
  if (!Number.isInteger(code) || code < 0 || code > 255) throw new RangeError(`invalid exit code ${code}`);
  return join([PROTOCOL_TAG, 'done', String(code), stdout, stderr]);
}

/** The response, or null when it is malformed. */
export function decodeResponse(bytes: Uint8Array): ControlResponse | null {
  if (bytes.length > MAX_MESSAGE) return null;
  const f = split(bytes);
  if (f[0] !== PROTOCOL_TAG) return null;
  if (f.length === 2 && f[1] === 'wait') return { kind: 'wait' };
  if (f.length !== 5 || f[1] !== 'done') return null;
  const code = canonical(f[2]!, 0, 255);
  if (code === null) return null;
  return { kind: 'done', code, stdout: f[3]!, stderr: f[4]! };
}
