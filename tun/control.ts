/**
 * The control socket of the host service (docs/SERVICE.md) over the addon (csrc/ctl.c): an
 * abstract-namespace UNIX SOCK_SEQPACKET socket, non-blocking and CLOEXEC, watched on Node's
 * own event loop by a notify-mode uv_poll (csrc/poll.c: no read, no thread-pool job). The
 * abstract namespace belongs to the network namespace the socket was created in.
 *
 * Watchers are level-triggered: a callback must drain its socket (accept / receive until null)
 * or stop watching, or it is called again on the next loop iteration.
 */
import { type CtlPeer, NOTIFY_DISCONNECT, NOTIFY_READABLE, native, type PollHandle } from './addon.js';
import { CONTROL_NAME, type ControlResponse, decodeResponse, encodeRequest, MAX_MESSAGE, type NsField, SILENCE_MS } from './control-protocol.js';
import { errnoName } from './errno.js';

/** The peer of a control connection, from SO_PEERCRED and SO_PEERGROUPS. */
export interface PeerCredentials {
  /** The peer's pid (for a server: the process that called listen()). */
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups. */
  readonly groups: readonly number[];
}

/** One received packet; its bytes are the first `length` of the caller's buffer. */
export interface ControlPacket {
  /** 0: the peer closed (or reset) the connection; the protocol never sends empty packets. */
  readonly length: number;
  /** The descriptor sent with it (CLOEXEC; now the receiver's to close), or -1. */
  readonly fd: number;
  /** The packet was longer than the buffer; the rest is lost. */
  readonly truncated: boolean;
  /** More than one descriptor came, or some were dropped (MSG_CTRUNC): all closed, `fd` is -1. */
  readonly fdsRefused: boolean;
}

/** A wake-up of a watcher. */
export interface WatchEvent {
  readable: boolean;
  /** The peer hung up (EPOLLRDHUP / POLLHUP); a receive then returns length 0. */
  disconnected: boolean;
  /** Non-zero: POLLERR on the socket (as libuv reports it); the watcher has stopped. */
  errno: number;
}

export interface SocketOptions {
  /** Create the socket in the network namespace of this fd (its abstract names are that namespace's). */
  netnsFd?: number;
}

class Watched {
  #fd: number;
  #poll: PollHandle | null = null;
  #ref = true;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  protected liveFd(what: string): number {
    if (this.#fd < 0) throw new Error(`${what}: the control socket is closed`);
    return this.#fd;
  }

  /** Starts (or replaces) the watcher; `cb` runs on each wake-up. */
  watch(cb: (ev: WatchEvent) => void): void {
    const fd = this.liveFd('watch');
    this.unwatch();
    this.#poll = native().pollNotify(fd, (events, errno) => {
      if (errno !== 0) this.#poll = null; // the addon stopped it
      cb({ readable: (events & NOTIFY_READABLE) !== 0, disconnected: (events & NOTIFY_DISCONNECT) !== 0, errno });
    });
    if (!this.#ref) native().pollRef(this.#poll, false);
  }

  unwatch(): void {
    if (this.#poll) native().pollStop(this.#poll);
    this.#poll = null;
  }

  /** Lets the process exit while this socket is watched. */
  unref(): this {
    this.#ref = false;
    if (this.#poll) native().pollRef(this.#poll, false);
    return this;
  }

  ref(): this {
    this.#ref = true;
    if (this.#poll) native().pollRef(this.#poll, true);
    return this;
  }

  /** Stops watching and closes the socket. Idempotent. */
  close(): void {
    this.unwatch();
    if (this.#fd >= 0) native().fdClose(this.#fd);
    this.#fd = -1;
  }
}

/** A connected control socket (accepted by a listener, or made by `connect`). */
export class ControlConnection extends Watched {
  readonly peer: PeerCredentials;

  constructor(p: CtlPeer) {
    super(p.fd);
    this.peer = { pid: p.pid, uid: p.uid, gid: p.gid, groups: p.groups };
  }

  /** Connects to `name` (non-blocking: EAGAIN when the listener's backlog is full, ECONNREFUSED when nobody listens). */
  static connect(name: string = CONTROL_NAME, opts: SocketOptions = {}): ControlConnection {
    return new ControlConnection(native().ctlConnect(name, opts.netnsFd ?? -1));
  }

  /** The next packet into `buf` (give it MAX_MESSAGE bytes), or null when none is pending. */
  receive(buf: Uint8Array): ControlPacket | null {
    return native().ctlRecv(this.liveFd('receive'), buf);
  }

  /**
   * Sends one packet, with descriptor `passFd` attached when given (SCM_RIGHTS; the caller keeps
   * its own copy). Never blocks: returns the bytes sent, or -errno (-EAGAIN: the peer's queue is
   * full; -EPIPE, or -ECONNRESET when it left packets of ours unread: the peer is gone).
   */
  send(data: Uint8Array, passFd = -1): number {
    return native().ctlSend(this.liveFd('send'), data, passFd);
  }
}

/** The listening socket: bound to an abstract name, backlog 512. */
export class ControlListener extends Watched {
  readonly name: string;

  private constructor(fd: number, name: string) {
    super(fd);
    this.name = name;
  }

  /**
   * Binds `name` and listens. Binding is atomic: a second listener in the same network
   * namespace gets an Error with code EADDRINUSE.
   */
  static listen(name: string = CONTROL_NAME, opts: SocketOptions = {}): ControlListener {
    return new ControlListener(native().ctlListen(name, opts.netnsFd ?? -1), name);
  }

  /**
   * The next pending connection with its peer's credentials, or null when there is none.
   * Throws with the errno's code (EMFILE, ENFILE, ...): the connection stays pending, so a
   * caller out of descriptors should stop watching for a while rather than spin.
   */
  accept(): ControlConnection | null {
    const p = native().ctlAccept(this.liveFd('accept'));
    return p ? new ControlConnection(p) : null;
  }
}

export interface RequestOptions {
  name?: string;
  /** The namespace field; default `fd` with `passFd`, else `none`. */
  ns?: NsField;
  /** A descriptor to attach (the container's namespace). */
  passFd?: number;
  /** Give up after this long without any packet (default 5 s). */
  silenceMs?: number;
  /** The uid the server must have (default 0). */
  serverUid?: number;
  netnsFd?: number;
}

export interface RequestResult {
  code: number;
  stdout: string;
  stderr: string;
}

function fail(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * One request as the C client makes it, on the event loop: connect, check the server's uid
 * (EPERM), send, wait for `done` while `wait` heartbeats arrive (ETIMEDOUT after `silenceMs`
 * of silence; ECONNRESET when the service closes without an answer; EPROTO for a malformed
 * answer). For tests and TypeScript callers; net-admin-helper is the production client.
 */
export function request(args: readonly string[], opts: RequestOptions = {}): Promise<RequestResult> {
  const conn = ControlConnection.connect(opts.name ?? CONTROL_NAME, opts.netnsFd !== undefined ? { netnsFd: opts.netnsFd } : {});
  const want = opts.serverUid ?? 0;
  if (conn.peer.uid !== want) {
    conn.close();
    return Promise.reject(fail('EPERM', `the control socket belongs to uid ${conn.peer.uid}, not ${want}`));
  }
  const passFd = opts.passFd ?? -1;
  const ns: NsField = opts.ns ?? (passFd >= 0 ? { kind: 'fd' } : { kind: 'none' });
  const sent = conn.send(encodeRequest({ ns, args: [...args] }), passFd);
  if (sent < 0) {
    conn.close();
    return Promise.reject(fail(errnoName(sent), `cannot send the request: ${errnoName(sent)}`));
  }
  const silenceMs = opts.silenceMs ?? SILENCE_MS;
  return new Promise((resolve, reject) => {
    const buf = new Uint8Array(MAX_MESSAGE);
    let timer = setTimeout(() => finish(fail('ETIMEDOUT', `no answer within ${silenceMs} ms`)), silenceMs);
    const finish = (r: Error | RequestResult): void => {
      clearTimeout(timer);
      conn.close();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    conn.watch((ev) => {
      for (;;) {
        if (conn.closed) return;
        const p = conn.receive(buf);
        if (p === null) break;
        if (p.fd >= 0) native().fdClose(p.fd);
        if (p.length === 0) return finish(fail('ECONNRESET', 'the service closed the connection without an answer'));
        const r: ControlResponse | null = p.truncated || p.fdsRefused ? null : decodeResponse(buf.subarray(0, p.length));
        if (r === null) return finish(fail('EPROTO', 'malformed answer from the service'));
        if (r.kind === 'done') return finish({ code: r.code, stdout: r.stdout, stderr: r.stderr });
        clearTimeout(timer);
        timer = setTimeout(() => finish(fail('ETIMEDOUT', `no answer within ${silenceMs} ms`)), silenceMs);
      }
      if (ev.errno !== 0) finish(fail(errnoName(ev.errno), `control socket error: ${errnoName(ev.errno)}`));
    });
  });
}
