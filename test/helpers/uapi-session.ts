/**
 * Raw UAPI conversations for tests: write bytes (with backpressure, tolerating a server that
 * hangs up mid-way), collect what comes back, and say how the connection ended.
 */
import { createConnection, type Socket } from 'node:net';

export interface Talk {
  /** Everything the server wrote (latin1). */
  text: string;
  /** Bytes of the writes that were handed to the socket before it ended. */
  sent: number;
  /** How it ended: 'end' (the server's EOF), 'answers' (enough answers came), or an error code. */
  how: string;
}

export interface TalkOptions {
  /** Stop once this many blank-line-terminated answers arrived (default: wait for the server to close). */
  answers?: number;
  /** Half-close our side after the writes. */
  end?: boolean;
  /** Give up after this long, resolving with how = 'timeout' (default 20 s). */
  timeoutMs?: number;
}

/** Count the answers ("...\n\n") in `text`. */
export function answerCount(text: string): number {
  return text.split('\n\n').length - 1;
}

/**
 * Connect to `path`, write each of `writes` (a Buffer, a string, or a function giving the next
 * chunk or null when done), and resolve once the server closed, or enough answers came.
 */
export function talk(path: string, writes: Array<string | Buffer | (() => Buffer | null)>, opts: TalkOptions = {}): Promise<Talk> {
  return new Promise((resolve) => {
    const s: Socket = createConnection(path);
    let text = '';
    let sent = 0;
    let done = false;
    const finish = (how: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, sent, how });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 20_000);
    s.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      if (opts.answers !== undefined && answerCount(text) >= opts.answers) finish('answers');
    });
    s.on('end', () => finish('end'));
    s.on('close', () => finish('end'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    s.on('connect', () => {
      let i = 0;
      const pump = (): void => {
        while (!done && i < writes.length) {
          const w = writes[i]!;
          let chunk: string | Buffer | null;
          if (typeof w === 'function') {
            chunk = w();
            if (chunk === null) {
              i++;
              continue;
            }
          } else {
            chunk = w;
            i++;
          }
          sent += typeof chunk === 'string' ? Buffer.byteLength(chunk, 'latin1') : chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        if (!done && opts.end) s.end();
      };
      pump();
    });
  });
}

/** A generator of `count` copies of `chunk`, for talk(). */
export function repeat(chunk: Buffer, count: number): () => Buffer | null {
  let n = 0;
  return () => (n++ < count ? chunk : null);
}
