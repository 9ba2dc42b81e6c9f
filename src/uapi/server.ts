/**
 * The UAPI UNIX socket server (/var/run/wireguard/IFNAME.sock), as wireguard-go's ipc package:
 * the directory is created 0755, a stale socket is replaced, a live one is left alone, the
 * socket is created with umask 077 (under a temporary name), set to 0600 and renamed into
 * place, and close() removes it (only if it is still ours).
 *
 * Per connection, requests are handled in order:
 *   "get=1\n\n"                     -> handler.get() text, then "errno=0\n\n"
 *   "set=1\n" key=value lines "\n"  -> parseSet(); if valid, handler.set(change); "errno=N\n\n"
 * A request may arrive in any number of reads and several may share a connection. A set
 * transaction is read completely before anything is validated or applied. Errnos are written
 * negated, as wireguard-go does (see uapi.ts). Requests of all connections are serialized.
 */
import { chmodSync, lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { ZoneResolver } from '../../noise/iptext.js';
import { type DeviceChange, type Logger, silentLogger } from '../../noise/types.js';
import { EINVAL, EIO, ENOANO, EPROTO, formatErrno, parseSet } from './protocol.js';

export interface UapiHandler {
  /** The body of a get answer (formatGet's output). */
  get(): string | Promise<string>;
  /** Apply a validated change; returns 0 or a positive errno (EADDRINUSE, EIO, ...). */
  set(change: DeviceChange): number | Promise<number>;
  /** Resolves interface names in endpoint zones where the UDP socket lives (default: indexes only). */
  zoneIndex?: ZoneResolver;
}

export interface UapiServerOptions {
  /** Longest accepted line, in bytes (default 8 KiB). */
  maxLineBytes?: number;
  /** Largest accepted set transaction, in bytes (default 256 MiB: millions of allowed IPs). */
  maxRequestBytes?: number;
}

export interface UapiServer {
  readonly path: string;
  /** Stop listening, drop the connections and remove the socket file (if it is still ours). */
  close(): Promise<void>;
}

/** Another live process answers on the socket path (e.g. a daemon for the same interface). */
export class UapiSocketInUseError extends Error {
  override name = 'UapiSocketInUseError';
  readonly code = 'EUAPIINUSE';
  constructor(readonly path: string) {
    super(`UAPI socket ${path} is in use by another process`);
  }
}

const DEFAULT_MAX_LINE = 8 * 1024;
const DEFAULT_MAX_REQUEST = 256 * 1024 * 1024;

/** Is something accepting connections on this UNIX socket path? */
function socketAlive(path: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (alive: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(alive);
    };
    // A connect that neither succeeds nor fails: someone holds it; do not steal the path.
    const t = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // bind(2) happens synchronously inside listen(): the socket file is created 0700 at most.
    let old: number | undefined;
    try {
      old = process.umask(0o077);
    } catch {
      old = undefined; // worker threads cannot change the umask; the chmod below still applies
    }
    try {
      server.listen(path);
    } finally {
      if (old !== undefined) process.umask(old);
    }
  });
}

/** Serialize requests across connections, like wireguard-go's ipcMutex. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<R>(fn: () => Promise<R>): Promise<R> {
    const p = this.tail.then(fn);
    this.tail = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }
}

type State = 'op' | 'get' | 'set';

class Connection {
  private partial = '';
  private queue: string[] = [];
  private qi = 0;
  private state: State = 'op';
  private setLines: string[] = [];
  private setBytes = 0;
  private busy = false;
  private ended = false;
  private closed = false;

  constructor(
    private readonly sock: Socket,
    private readonly handler: UapiHandler,
    private readonly logger: Logger,
    private readonly mutex: Mutex,
    private readonly maxLine: number,
    private readonly maxRequest: number,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('end', () => {
      this.ended = true;
      this.pump();
    });
    sock.on('error', (e) => {
      this.logger.verbose(`UAPI: connection error: ${e.message}`);
      this.destroy();
    });
    sock.on('close', () => {
      this.closed = true;
    });
  }

  destroy(): void {
    this.closed = true;
    this.queue = [];
    this.qi = 0;
    this.setLines = [];
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    // latin1: one char per byte, so lengths are byte counts and garbage cannot throw.
    const text = this.partial + chunk.toString('latin1');
    const parts = text.split('\n');
    this.partial = parts.pop()!;
    if (this.partial.length > this.maxLine) {
      this.protocolError(EPROTO, `line longer than ${this.maxLine} bytes`);
      return;
    }
    if (parts.length) {
      if (this.qi === this.queue.length) {
        this.queue = parts;
        this.qi = 0;
      } else {
        for (const p of parts) this.queue.push(p);
      }
    }
    this.pump();
  }

  /** Answer with an errno and hang up: the stream cannot be resynchronized. */
  private protocolError(errno: number, why: string): void {
    if (this.closed) return;
    this.logger.error(`UAPI: ${why}`);
    this.closed = true;
    this.queue = [];
    this.qi = 0;
    this.setLines = [];
    this.sock.end(formatErrno(errno));
  }

  private pump(): void {
    while (!this.busy && !this.closed) {
      if (this.qi < this.queue.length) {
        const line = this.queue[this.qi++]!;
        if (this.qi === this.queue.length) {
          this.queue = [];
          this.qi = 0;
        }
        this.onLine(line);
        continue;
      }
      if (!this.ended) return;
      // End of input: a last line without '\n' still counts, and an unterminated set is
      // applied as if the blank line had come (wireguard-go reads to EOF the same way).
      if (this.partial !== '') {
        const line = this.partial;
        this.partial = '';
        this.onLine(line);
        continue;
      }
      if (this.state === 'set') {
        this.onLine('');
        continue;
      }
      if (this.state === 'get') {
        this.onLine('');
        continue;
      }
      this.closed = true;
      this.sock.end();
      return;
    }
    if (this.busy) this.sock.pause();
  }

  private onLine(line: string): void {
    if (line.length > this.maxLine) {
      this.protocolError(EPROTO, `line longer than ${this.maxLine} bytes`);
      return;
    }
    switch (this.state) {
      case 'op':
        if (line === 'get=1') this.state = 'get';
        else if (line === 'set=1') {
          this.state = 'set';
          this.setLines = [];
          this.setBytes = 0;
        } else {
          this.protocolError(EPROTO, `invalid UAPI operation: ${JSON.stringify(line.slice(0, 64))}`);
        }
        return;
      case 'get':
        if (line !== '') {
          this.protocolError(EINVAL, 'trailing characters in UAPI get');
          return;
        }
        this.run(async () => {
          let body: string;
          try {
            body = await this.handler.get();
          } catch (e) {
            this.logger.error(`UAPI: get failed: ${(e as Error).message}`);
            return formatErrno(EIO);
          }
          return body + formatErrno(0);
        });
        return;
      case 'set':
        if (line !== '') {
          this.setBytes += line.length + 1;
          if (this.setBytes > this.maxRequest) {
            this.protocolError(ENOANO, `set request larger than ${this.maxRequest} bytes`);
            return;
          }
          this.setLines.push(line);
          return;
        }
        {
          const lines = this.setLines;
          this.setLines = [];
          this.run(async () => {
            const parsed = parseSet(lines, this.handler.zoneIndex);
            if ('errno' in parsed) {
              this.logger.error(`UAPI: ${parsed.message}`);
              return formatErrno(parsed.errno);
            }
            let errno: number;
            try {
              errno = await this.handler.set(parsed.change);
            } catch (e) {
              this.logger.error(`UAPI: set failed: ${(e as Error).message}`);
              errno = ENOANO;
            }
            if (!Number.isInteger(errno) || errno < 0) errno = ENOANO;
            return formatErrno(errno);
          });
        }
        return;
    }
  }

  private run(op: () => Promise<string>): void {
    this.busy = true;
    this.state = 'op';
    void this.mutex
      .run(op)
      .catch((e: unknown) => {
        this.logger.error(`UAPI: ${(e as Error).message}`);
        return formatErrno(ENOANO);
      })
      .then((reply) => {
        if (this.closed) return;
        const flushed = this.sock.write(reply, 'latin1');
        const next = () => {
          this.busy = false;
          if (this.closed) return;
          this.sock.resume();
          this.pump();
        };
        // A client that does not read its answers must not make us buffer without bound.
        if (flushed) next();
        else this.sock.once('drain', next);
      });
  }
}

/**
 * Listen for UAPI connections on `socketPath`. Throws UapiSocketInUseError when another live
 * process answers there (the caller words the message, e.g. "IFNAME is already in use").
 */
export async function serveUapi(socketPath: string, handler: UapiHandler, logger: Logger = silentLogger, options: UapiServerOptions = {}): Promise<UapiServer> {
  const maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE;
  const maxRequest = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST;
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });

  const mutex = new Mutex();
  const conns = new Set<Connection>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => {
    const c = new Connection(sock, handler, logger, mutex, maxLine, maxRequest);
    conns.add(c);
    sock.on('close', () => conns.delete(c));
  });

  // What is at the path now: a live daemon (refuse), or leftovers (remove).
  let exists = true;
  try {
    lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    exists = false;
  }
  if (exists) {
    if (await socketAlive(socketPath)) throw new UapiSocketInUseError(socketPath);
    logger.verbose(`UAPI: removing stale socket ${socketPath}`);
    try {
      unlinkSync(socketPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  // Bind a temporary name, make it 0600, then rename it into place: clients never see a
  // socket with other permissions, and libuv's unlink-on-close hits the temporary name, never
  // a socket some other process has put at socketPath meanwhile.
  const tmp = `${socketPath}.${process.pid}~`;
  const viaTmp = Buffer.byteLength(tmp) <= 107; // sun_path limit
  const bindPath = viaTmp ? tmp : socketPath;
  if (viaTmp) {
    try {
      unlinkSync(tmp);
    } catch {
      // not there
    }
  }
  try {
    await listenOnce(server, bindPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && !viaTmp) throw new UapiSocketInUseError(socketPath);
    throw e;
  }
  // Identity of our socket file (inode numbers alone get reused at once on tmpfs).
  let ident: string;
  const identOf = (): string => {
    const st = lstatSync(socketPath, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  };
  try {
    chmodSync(bindPath, 0o600);
    if (viaTmp) renameSync(tmp, socketPath);
    ident = identOf();
  } catch (e) {
    server.close();
    throw e;
  }
  server.on('error', (e) => logger.error(`UAPI: server error: ${e.message}`));

  let closing: Promise<void> | null = null;
  return {
    path: socketPath,
    close(): Promise<void> {
      if (closing) return closing;
      // Remove the path first (only if it is still our socket), so a successor can bind at once.
      try {
        if (identOf() === ident) unlinkSync(socketPath);
      } catch {
        // already gone
      }
      closing = new Promise((resolve) => {
        server.close(() => resolve());
        for (const c of conns) c.destroy();
        conns.clear();
      });
      return closing;
    },
  };
}
