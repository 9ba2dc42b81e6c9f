/**
 * UAPI client: talk to a userspace WireGuard (ours, wireguard-go, boringtun...) over its UNIX
 * socket. Errnos are returned as positive numbers whatever sign the server writes.
 */
import { createConnection } from 'node:net';
import { EPROTO, parseErrno, parseGetResponse, type UapiDeviceInfo, UapiError } from './protocol.js';

export interface UapiRequestOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
}

/**
 * Send one raw request (e.g. "get=1\n\n") and return the raw answer, up to and including the
 * blank line that ends it (or whatever arrived before the server closed the connection).
 */
export function uapiRequest(socketPath: string, text: string, options: UapiRequestOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    let settled = false;
    let tail = ''; // last byte of the previous chunk, to find "\n\n" across reads
    const sock = createConnection(socketPath);
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(chunks.join(''));
    };
    const timer = setTimeout(() => finish(new UapiError(`UAPI request to ${socketPath} timed out`, EPROTO)), timeoutMs);
    sock.on('connect', () => sock.write(text, 'latin1'));
    sock.on('data', (buf: Buffer) => {
      const s = buf.toString('latin1');
      chunks.push(s);
      const probe = tail + s;
      const end = probe.indexOf('\n\n');
      if (end >= 0) {
        // Keep exactly the answer, through its terminating blank line.
        const extra = probe.length - (end + 2);
        if (extra > 0) chunks[chunks.length - 1] = s.slice(0, s.length - extra);
        finish(null);
        return;
      }
      tail = s.length ? s[s.length - 1]! : tail;
    });
    sock.on('end', () => finish(null));
    sock.on('error', (e) => finish(e));
  });
}

/** The errno of a set/get answer ("...errno=N\n\n"), positive; EPROTO if there is none. */
function answerErrno(answer: string): number {
  const m = /(?:^|\n)errno=([^\n]*)\n\n$/.exec(answer);
  if (!m) return EPROTO;
  return parseErrno(m[1]!) ?? EPROTO;
}

/**
 * Run a set transaction: `lines` are the key=value lines (an array, or text with '\n'
 * between them). Returns 0 or the (positive) errno the server answered.
 */
export async function uapiSet(socketPath: string, lines: string | readonly string[], options: UapiRequestOptions = {}): Promise<number> {
  let body = typeof lines === 'string' ? lines : lines.join('\n');
  while (body.endsWith('\n')) body = body.slice(0, -1);
  if (body.includes('\n\n')) throw new UapiError('set lines must not contain a blank line', 22);
  const text = body === '' ? 'set=1\n\n' : `set=1\n${body}\n\n`;
  return answerErrno(await uapiRequest(socketPath, text, options));
}

/** The raw `get=1` answer text. */
export function uapiGetRaw(socketPath: string, options: UapiRequestOptions = {}): Promise<string> {
  return uapiRequest(socketPath, 'get=1\n\n', options);
}

/** `get=1`, parsed. Throws UapiError (with the errno) if the server reports an error. */
export async function uapiGet(socketPath: string, options: UapiRequestOptions = {}): Promise<UapiDeviceInfo> {
  return parseGetResponse(await uapiGetRaw(socketPath, options));
}

export { parseGetResponse, type UapiDeviceInfo } from './protocol.js';
