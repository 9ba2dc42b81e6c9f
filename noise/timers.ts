/**
 * The per-peer timer state machine (whitepaper §6, the kernel's timers.c), as deadlines on a
 * monotonic clock: no real timers. The owner calls the event methods below when packets move,
 * and `run(now, actions)` to fire the deadlines that are due.
 *
 * Timers:
 * - retransmitHandshake: REKEY_TIMEOUT + jitter after sending an initiation; resend, up to
 *   MAX_TIMER_HANDSHAKES + 1 retries (as the kernel: the attempt counter passes the limit), then give up.
 * - sendKeepalive: KEEPALIVE_TIMEOUT after receiving data, unless we sent something since.
 * - newHandshake: KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after sending data, unless we
 *   received something since.
 * - zeroKeyMaterial: 3 * REJECT_AFTER_TIME after the last session was derived.
 * - persistentKeepalive: every `interval` after any authenticated packet went either way.
 */
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, ZERO_KEY_MATERIAL_AFTER } from './constants.js';

/** What the timers make the peer do; implemented by the peer. */
export interface TimerActions {
  /** Resend the initiation (a retry: the attempt counter is kept). Clear the sticky source first. */
  retransmitHandshake(): void;
  /** Give up after MAX_TIMER_HANDSHAKES + 1 retries: drop the staged packets. */
  giveUpHandshake(): void;
  /** Send a keepalive (an empty transport message, or stage one and handshake). */
  sendKeepalive(): void;
  /** Start a new handshake (not a retry). Clear the sticky source first. */
  newHandshake(): void;
  /** Zero the handshake and all keypairs. */
  zeroKeyMaterial(): void;
}

const NONE = Number.POSITIVE_INFINITY;

export class Timers {
  retransmitHandshake = NONE;
  sendKeepalive = NONE;
  newHandshake = NONE;
  zeroKeyMaterial = NONE;
  persistentKeepalive = NONE;

  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;
  /** Persistent keepalive interval in ms (0: off). */
  persistentKeepaliveInterval = 0;
  /** False once the peer is removed or the device closed: no timer is armed any more. */
  enabled = true;

  /** `jitter()` returns a uniformly random number of ms in [0, REKEY_TIMEOUT_JITTER_MAX). */
  constructor(private readonly jitter: () => number) {}

  /** Earliest deadline (Infinity when none). */
  get next(): number {
    return Math.min(this.retransmitHandshake, this.sendKeepalive, this.newHandshake, this.zeroKeyMaterial, this.persistentKeepalive);
  }

  private arm(at: number): number {
    return this.enabled ? at : NONE;
  }

  /** After an authenticated data (not keepalive) packet was sent. */
  dataSent(now: number): void {
    if (this.newHandshake === NONE) this.newHandshake = this.arm(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter());
  }

  /** After an authenticated data (not keepalive) packet was received. */
  dataReceived(now: number): void {
    if (this.sendKeepalive === NONE) this.sendKeepalive = this.arm(now + KEEPALIVE_TIMEOUT);
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated packet (handshake, data, keepalive) was sent. */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepalive = NONE;
  }

  /** After any authenticated packet was received. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshake = NONE;
  }

  /** Before any authenticated packet is sent or after one is received. */
  anyAuthenticatedPacketTraversal(now: number): void {
    if (this.persistentKeepaliveInterval > 0) this.persistentKeepalive = this.arm(now + this.persistentKeepaliveInterval);
  }

  /** After an initiation was sent. */
  handshakeInitiated(now: number): void {
    this.retransmitHandshake = this.arm(now + REKEY_TIMEOUT + this.jitter());
  }

  /** After a response was consumed, or the first data under a responder's keypair arrived. */
  handshakeComplete(): void {
    this.retransmitHandshake = NONE;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** After transport keys were derived (either role). */
  sessionDerived(now: number): void {
    this.zeroKeyMaterial = this.arm(now + ZERO_KEY_MATERIAL_AFTER);
  }

  /** Disarm everything (peer removed, device closed). */
  stop(): void {
    this.enabled = false;
    this.retransmitHandshake = this.sendKeepalive = this.newHandshake = this.zeroKeyMaterial = this.persistentKeepalive = NONE;
  }

  /** Fire every deadline at or before `now`, in a fixed order. */
  run(now: number, a: TimerActions): void {
    if (this.retransmitHandshake <= now) {
      this.retransmitHandshake = NONE;
      if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
        this.sendKeepalive = NONE;
        a.giveUpHandshake();
        if (this.zeroKeyMaterial === NONE) this.zeroKeyMaterial = this.arm(now + ZERO_KEY_MATERIAL_AFTER);
      } else {
        this.handshakeAttempts++;
        a.retransmitHandshake();
      }
    }
    if (this.sendKeepalive <= now) {
      this.sendKeepalive = NONE;
      a.sendKeepalive();
      if (this.needAnotherKeepalive) {
        this.needAnotherKeepalive = false;
        this.sendKeepalive = this.arm(now + KEEPALIVE_TIMEOUT);
      }
    }
    if (this.newHandshake <= now) {
      this.newHandshake = NONE;
      a.newHandshake();
    }
    if (this.zeroKeyMaterial <= now) {
      this.zeroKeyMaterial = NONE;
      a.zeroKeyMaterial();
    }
    if (this.persistentKeepalive <= now) {
      this.persistentKeepalive = NONE;
      if (this.persistentKeepaliveInterval > 0) a.sendKeepalive();
    }
  }
}
