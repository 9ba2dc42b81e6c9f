/**
 * Transport keypairs and the previous/current/next rotation with key confirmation (the
 * kernel's noise.c add_new_keypair / received_with_keypair).
 *
 * - An initiator's new keypair becomes `current` at once (the response confirmed it).
 * - A responder's new keypair becomes `next`: it cannot send with it until the initiator
 *   proves it has it by sending the first transport message under it; then `next` is promoted
 *   to `current` and the old current becomes `previous`.
 * - Keypairs leaving the three slots are zeroed and handed to `release` (which frees their
 *   receiver index).
 */
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME } from './constants.js';
import type { SessionKeys } from './handshake.js';
import { ReplayWindow } from './replay.js';

export class Keypair {
  readonly sendKey: Uint8Array;
  readonly recvKey: Uint8Array;
  readonly isInitiator: boolean;
  readonly localIndex: number;
  readonly remoteIndex: number;
  /** Monotonic ms at derivation. */
  readonly birth: number;
  /** Next counter to send. */
  sendCounter = 0;
  sendValid = true;
  recvValid = true;
  readonly replay = new ReplayWindow();

  constructor(keys: SessionKeys, birth: number) {
    this.sendKey = keys.sendKey;
    this.recvKey = keys.recvKey;
    this.isInitiator = keys.isInitiator;
    this.localIndex = keys.localIndex;
    this.remoteIndex = keys.remoteIndex;
    this.birth = birth;
  }

  /** Whether this keypair may still send at `now` (valid, not too old, counters left). */
  canSend(now: number): boolean {
    return this.sendValid && now - this.birth < REJECT_AFTER_TIME && this.sendCounter < REJECT_AFTER_MESSAGES;
  }

  /** Whether this keypair may still receive at `now`. */
  canReceive(now: number): boolean {
    return this.recvValid && now - this.birth < REJECT_AFTER_TIME && this.replay.counter < REJECT_AFTER_MESSAGES;
  }

  zero(): void {
    this.sendKey.fill(0);
    this.recvKey.fill(0);
    this.sendValid = false;
    this.recvValid = false;
  }
}

const sentWith = (kp: Keypair | null, index: number, counter: number): boolean => kp !== null && kp.remoteIndex === index && counter < kp.sendCounter;

export class Keypairs {
  previous: Keypair | null = null;
  current: Keypair | null = null;
  next: Keypair | null = null;

  constructor(private readonly release: (kp: Keypair) => void) {}

  /** Whether a keypair has remote index `index` (uint32). */
  hasRemoteIndex(index: number): boolean {
    return this.current?.remoteIndex === index || this.previous?.remoteIndex === index || this.next?.remoteIndex === index;
  }

  /** Whether transport message (remote index `index`, `counter`) was sent with one of these keypairs. */
  sent(index: number, counter: number): boolean {
    return sentWith(this.current, index, counter) || sentWith(this.previous, index, counter) || sentWith(this.next, index, counter);
  }

  private drop(kp: Keypair | null): void {
    if (!kp) return;
    kp.zero();
    this.release(kp);
  }

  /** Install a freshly derived keypair. */
  add(kp: Keypair): void {
    if (kp.isInitiator) {
      if (this.next) {
        // (previous, current, next) → (next, new): the unconfirmed next becomes previous.
        const next = this.next;
        this.next = null;
        this.drop(this.previous);
        this.previous = next;
        this.drop(this.current);
      } else {
        this.drop(this.previous);
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      this.drop(this.next);
      this.next = kp;
      this.drop(this.previous);
      this.previous = null;
    }
  }

  /**
   * Note that a transport message authenticated under `kp`. Returns true when this confirmed
   * the `next` keypair (which is now `current`): the handshake is complete.
   */
  receivedWith(kp: Keypair): boolean {
    if (kp !== this.next) return false;
    this.drop(this.previous);
    this.previous = this.current;
    this.current = kp;
    this.next = null;
    return true;
  }

  /** Stop sending with current and next (private key change), as the kernel does. */
  expireSending(): void {
    if (this.current) this.current.sendValid = false;
    if (this.next) this.next.sendValid = false;
  }

  /** Zero and release all three. */
  clear(): void {
    const { previous, current, next } = this;
    this.previous = this.current = this.next = null;
    this.drop(previous);
    this.drop(current);
    this.drop(next);
  }

  get any(): boolean {
    return this.previous !== null || this.current !== null || this.next !== null;
  }
}
