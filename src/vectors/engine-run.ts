/**
 * The engine producing the vectors: two real Devices (noise/device.ts) on the in-memory
 * network, with a fake clock at a fixed wall time and scripted randomness (scripted-rng.ts),
 * configured through the public `apply`. Every datagram between them is recorded in order, so
 * the generator can compare what the engine really sent with what the whitepaper computes.
 */
import type { CryptoSuite } from '../../crypto/suite.js';
import { type Device, DROP_REASONS, type DropReason } from '../../noise/device.js';
import { parseCidr } from '../../noise/iptext.js';
import { FakeClock, MemoryNetwork } from '../../noise/memnet.js';
import type { Endpoint } from '../../noise/types.js';
import type { Party } from './format.js';
import { type ScriptedRng, scriptedRng } from './scripted-rng.js';

/** Where the two parties sit (documentation addresses, RFC 5737) and their tunnel addresses. */
export const ENDPOINT: Record<Party, Endpoint> = {
  initiator: { address: '192.0.2.1', port: 51820, family: 4 },
  responder: { address: '198.51.100.2', port: 51821, family: 4 },
};
export const TUNNEL: Record<Party, { v4: string; v6: string }> = {
  initiator: { v4: '10.0.0.1', v6: 'fd00::1' },
  responder: { v4: '10.0.0.2', v6: 'fd00::2' },
};

export interface SideConfig {
  privateKey: Uint8Array;
  /** Scripted draws of the side's Rng, by length (see scripted-rng.ts). */
  script: Record<number, Uint8Array[]>;
  underLoad?: boolean;
}

export interface PairConfig {
  suite: CryptoSuite;
  /** Wall clock (Unix ms) when the fake monotonic clock reads 0. */
  wallStart: number;
  initiator: SideConfig;
  responder: SideConfig;
  presharedKey: Uint8Array | null;
}

export interface Sent {
  from: Party;
  data: Uint8Array;
}

const other = (p: Party): Party => (p === 'initiator' ? 'responder' : 'initiator');

export class EnginePair {
  readonly clock: FakeClock;
  readonly device: Record<Party, Device>;
  /** Every datagram pumped between the devices, in order (copies). */
  readonly sent: Sent[] = [];
  private readonly net = new MemoryNetwork();
  private readonly rngs: Record<Party, ScriptedRng>;
  /** Return false to lose a datagram in flight (it is still recorded in `sent`). */
  deliver: (d: Sent) => boolean = () => true;

  constructor(cfg: PairConfig) {
    this.clock = new FakeClock(cfg.wallStart);
    this.rngs = { initiator: scriptedRng(cfg.initiator.script), responder: scriptedRng(cfg.responder.script) };
    const attach = (p: Party) =>
      this.net.attach(ENDPOINT[p], { clock: this.clock, rng: this.rngs[p].rng, crypto: cfg.suite, underLoad: cfg[p].underLoad ?? false });
    this.device = { initiator: attach('initiator'), responder: attach('responder') };
    this.net.filter = (d) => {
      const from: Party = d.from.address === ENDPOINT.initiator.address ? 'initiator' : 'responder';
      const s = { from, data: d.data };
      this.sent.push(s);
      return this.deliver(s);
    };
    const pub = (p: Party) => this.device[p].publicKey ?? new Uint8Array(32);
    this.device.initiator.apply({ privateKey: cfg.initiator.privateKey, peers: [] });
    this.device.responder.apply({ privateKey: cfg.responder.privateKey, peers: [] });
    for (const p of ['initiator', 'responder'] as const) {
      const q = other(p);
      this.device[p].apply({
        peers: [
          {
            publicKey: pub(q),
            presharedKey: cfg.presharedKey,
            // Only the initiator knows where the responder is; the responder learns it.
            ...(p === 'initiator' ? { endpoint: ENDPOINT.responder } : {}),
            allowedIps: [parseCidr(`${TUNNEL[q].v4}/32`), parseCidr(`${TUNNEL[q].v6}/128`)],
          },
        ],
      });
    }
  }

  /** Deliver queued datagrams until the network is quiet; returns what was sent meanwhile. */
  pump(): Sent[] {
    const start = this.sent.length;
    this.net.pump();
    return this.sent.slice(start);
  }

  /** Packets written to `p`'s TUN side so far. */
  inbox(p: Party): Uint8Array[] {
    return this.net.inbox(this.device[p]);
  }

  /** Move the clock forward by `ms`, run `p`'s due timers and pump; returns what was sent. */
  advanceAndTick(ms: number, p: Party): Sent[] {
    this.clock.advance(ms);
    this.device[p].tick();
    return this.pump();
  }

  /**
   * Throws unless both Rngs served exactly their scripts and the devices dropped nothing but
   * `allowed` (drop reason → count, summed over both devices).
   */
  checkClean(allowed: Partial<Record<DropReason, number>> = {}): void {
    for (const p of ['initiator', 'responder'] as const) {
      const r = this.rngs[p];
      if (r.unexpected.length > 0) throw new Error(`the ${p} drew more scripted values than given (lengths ${r.unexpected.join(', ')})`);
      const left = r.remaining();
      if (Object.keys(left).length > 0) throw new Error(`the ${p} left scripted values undrawn: ${JSON.stringify(left)}`);
    }
    for (const reason of DROP_REASONS) {
      const n = this.device.initiator.drops[reason] + this.device.responder.drops[reason];
      if (n !== (allowed[reason] ?? 0)) throw new Error(`the engine dropped ${n} × ${reason} (expected ${allowed[reason] ?? 0})`);
    }
  }

  close(): void {
    this.device.initiator.close();
    this.device.responder.close();
  }
}
