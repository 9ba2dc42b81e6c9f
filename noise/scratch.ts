/**
 * The data path's scratch memory: one buffer for the datagram being sent, one for the packet
 * being received, their nonces, and views of them by length, so that a packet costs no
 * allocation. Devices of one process may share a Scratch (the host service holds thousands of
 * devices on one event loop): the nesting counters are the Scratch's, so a call that re-enters
 * while its buffer is in use (a sink that synchronously drives another device of the same
 * Scratch, as in-memory networks do) gets a fresh buffer instead.
 *
 * Invariant: a view handed out is valid until the operation that asked for it returns; nothing
 * may keep one.
 */
import { NONCE_LEN } from '../crypto/aead.js';
import { MAX_DATAGRAM_SIZE, TRANSPORT_HEADER_SIZE } from './constants.js';

/** Bound on the per-size view caches (sizes seen beyond it get fresh views). */
const MAX_CACHED_VIEWS = 4096;

export class Scratch {
  readonly tx = new Uint8Array(MAX_DATAGRAM_SIZE + 16);
  readonly rx = new Uint8Array(MAX_DATAGRAM_SIZE);
  readonly txNonce = new Uint8Array(NONCE_LEN);
  readonly rxNonce = new Uint8Array(NONCE_LEN);
  /** How many sends / receives using these buffers are in progress (nested ones included). */
  txDepth = 0;
  rxDepth = 0;
  private readonly txViews = new Map<number, Uint8Array>();
  private readonly txSealViews = new Map<number, Uint8Array>();
  private readonly rxViews = new Map<number, Uint8Array>();
  private nestedTx: Uint8Array | null = null;

  /** A buffer of exactly n bytes for an outgoing message (a view of `tx` unless nested). */
  txBuffer(n: number): Uint8Array {
    if (this.txDepth !== 0) {
      this.nestedTx = new Uint8Array(n);
      return this.nestedTx;
    }
    let v = this.txViews.get(n);
    if (v === undefined) {
      v = this.tx.subarray(0, n);
      if (this.txViews.size < MAX_CACHED_VIEWS) this.txViews.set(n, v);
    }
    return v;
  }

  /** Bytes [TRANSPORT_HEADER_SIZE, n) of the buffer the last txBuffer(n) returned. */
  txSealView(n: number): Uint8Array {
    if (this.txDepth !== 0) return this.nestedTx!.subarray(TRANSPORT_HEADER_SIZE, n);
    let v = this.txSealViews.get(n);
    if (v === undefined) {
      v = this.tx.subarray(TRANSPORT_HEADER_SIZE, n);
      if (this.txSealViews.size < MAX_CACHED_VIEWS) this.txSealViews.set(n, v);
    }
    return v;
  }

  /** The first n bytes of `rx` (callers check rxDepth first: nested receives use fresh buffers). */
  rxView(n: number): Uint8Array {
    let v = this.rxViews.get(n);
    if (v === undefined) {
      v = this.rx.subarray(0, n);
      if (this.rxViews.size < MAX_CACHED_VIEWS) this.rxViews.set(n, v);
    }
    return v;
  }

  /** Zero both buffers (a device closing: no plaintext or ciphertext stays behind). */
  wipe(): void {
    this.tx.fill(0);
    this.rx.fill(0);
  }
}
