/**
 * The control server's transport: tun/control.ts's abstract SOCK_SEQPACKET socket, adapted to
 * the ControlConnection the server (control.ts) works with. Accepts are drained on each
 * wake-up; a connection's packets are read into one shared buffer (the server handles each
 * packet before the next is read).
 */

import { ControlListener, type ControlConnection as Socket } from '../../tun/control.js';
import { CONTROL_NAME, MAX_MESSAGE } from '../../tun/control-protocol.js';
import type { ControlConnection } from './control.js';

const buf = new Uint8Array(MAX_MESSAGE + 1);
/** When out of descriptors (EMFILE), wait this long before accepting again. */
const ACCEPT_BACKOFF_MS = 100;

function adapt(sock: Socket): ControlConnection {
  let onPacket: ((data: Uint8Array, fd: number) => void) | null = null;
  const closers: Array<() => void> = [];
  let gone = false;
  const hangUp = () => {
    if (gone) return;
    gone = true;
    sock.close();
    for (const cb of closers.splice(0)) cb();
  };
  sock.watch((ev) => {
    for (;;) {
      if (sock.closed) return;
      const p = sock.receive(buf);
      if (p === null) break;
      if (p.length === 0) return hangUp();
      // A truncated packet or refused descriptors: the request cannot be what the client meant.
      const data = p.truncated || p.fdsRefused ? buf.subarray(0, MAX_MESSAGE + 1) : buf.slice(0, p.length);
      onPacket?.(data, p.fd);
    }
    if (ev.disconnected || ev.errno !== 0) hangUp();
  });
  return {
    uid: sock.peer.uid,
    gid: sock.peer.gid,
    groups: sock.peer.groups,
    onPacket(cb) {
      onPacket = cb;
    },
    onClose(cb) {
      if (gone) cb();
      else closers.push(cb);
    },
    send(data) {
      return !gone && sock.send(data) === data.length;
    },
    close: hangUp,
  };
}

export interface ControlTransport {
  /** Start handing connections to `onConnection`. */
  serve(onConnection: (c: ControlConnection) => void): void;
  close(): void;
}

/** Bind the control socket of this network namespace (throws EADDRINUSE when another service has it). */
export function listenControl(name: string = CONTROL_NAME): ControlTransport {
  const listener = ControlListener.listen(name);
  let paused: NodeJS.Timeout | null = null;
  let handler: ((c: ControlConnection) => void) | null = null;
  const drain = () => {
    for (;;) {
      let s: Socket | null;
      try {
        s = listener.accept();
      } catch {
        // Out of descriptors: stop watching for a while rather than spin on the pending one.
        listener.unwatch();
        paused = setTimeout(() => {
          paused = null;
          listener.watch(drain);
        }, ACCEPT_BACKOFF_MS);
        return;
      }
      if (s === null) return;
      handler?.(adapt(s));
    }
  };
  return {
    serve(onConnection) {
      handler = onConnection;
      listener.watch(drain);
    },
    close() {
      if (paused) clearTimeout(paused);
      listener.close();
    },
  };
}
