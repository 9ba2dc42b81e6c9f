/**
 * Routing-loop detection (the kernel refuses to send to an endpoint routed through the device
 * itself, ELOOP). In userspace the sign is a packet from the TUN that is one of our own
 * encrypted datagrams coming back: the route to a peer's endpoint leads into the device (its
 * endpoint inside allowed IPs routed into it), or into another of our devices that leads back.
 * Re-encrypted, such a datagram grows by the transport overhead on each lap until it no longer
 * fits the MTU and is fragmented, and every fragment laps on: the traffic multiplies.
 *
 * The test, cheap first and exact last:
 *   1. an IPv4/IPv6 UDP packet (or a fragment of one) — one byte of the header;
 *   2. whose source port is one a device of this process is bound to (`OwnDatagrams`);
 *   3. whose payload is a WireGuard message that this device made: a transport message whose
 *      receiver index is the remote index of one of its keypairs and whose counter it already
 *      used, or a handshake message whose sender index is one of its own live indices.
 * Step 3 keeps nested WireGuard working: a WireGuard inside a container whose traffic crosses
 * this tunnel may well use the same port number (in its own namespace), but its messages carry
 * indices its peers chose, not ones this device has sent (a server's indices are unique among
 * its sessions, and 32 random bits otherwise).
 *
 * Loops through several devices of one process: a datagram of another device X entering this
 * device Y is nesting, not yet a loop; Y remembers which of its own messages carried X's
 * (`carried`). When a message of Y then comes into X, X follows that chain and finds itself.
 * Fragments after the first carry no UDP header: the first fragment's verdict is remembered
 * by (addresses, identification) and applied to the others.
 */
import { readU32, readU64 } from './messages.js';

/** What a device offers the others of its process for loop detection. */
export interface LoopParty {
  /** Whether the WireGuard message at `w[off..]` is one this device sent (see the header). */
  ownsMessage(w: Uint8Array, off: number): boolean;
  /** The message of another device that this device's transport message (receiver, counter) carried. */
  carried(receiver: number, counter: number): CarriedMessage | undefined;
}

export interface CarriedMessage {
  readonly owner: LoopParty;
  readonly receiver: number;
  readonly counter: number;
}

/** The UDP ports the devices of this process are bound to (one registry per process). */
export class OwnDatagrams {
  private readonly byPort = new Map<number, LoopParty[]>();

  bind(party: LoopParty, port: number): void {
    this.unbind(party);
    if (port <= 0) return;
    const list = this.byPort.get(port);
    if (list) list.push(party);
    else this.byPort.set(port, [party]);
  }

  unbind(party: LoopParty): void {
    for (const [port, list] of this.byPort) {
      const i = list.indexOf(party);
      if (i < 0) continue;
      list.splice(i, 1);
      if (list.length === 0) this.byPort.delete(port);
    }
  }

  /** The devices bound to `port` (none: undefined). */
  partiesOn(port: number): readonly LoopParty[] | undefined {
    return this.byPort.get(port);
  }

  get size(): number {
    return this.byPort.size;
  }
}

/** The verdicts of check(). */
export const NOT_OURS = 0;
export const LOOP = 1;
/** Another device's datagram, not (yet) a loop: call recordCarry once it is sent. */
export const CARRIED = 2;

const FRAGMENT_MEMORY = 16;
const CARRY_MEMORY = 256;
const WG_HEADER = 16;
const MAX_CHAIN = 16;

export class LoopGuard {
  // The fragment memory: the last FRAGMENT_MEMORY first fragments found to be ours or carried.
  private readonly fragKeys: string[] = [];
  private readonly fragVerdicts: number[] = [];
  private readonly fragCarry: (CarriedMessage | null)[] = [];
  private fragNext = 0;
  // Own messages that carried another device's (receiver:counter -> carried), oldest first out.
  private readonly carries = new Map<string, CarriedMessage>();
  private pending: CarriedMessage | null = null;

  constructor(
    private readonly self: LoopParty,
    readonly registry: OwnDatagrams,
  ) {}

  /** The carried message of our transport message (receiver, counter), if any. */
  carried(receiver: number, counter: number): CarriedMessage | undefined {
    return this.carries.get(`${receiver}:${counter}`);
  }

  /**
   * `packet[0..n)` (family `fam`) comes from the TUN, protocol or next header UDP or an IPv6
   * fragment header (the caller's one-byte test): NOT_OURS, LOOP or CARRIED.
   */
  check(packet: Uint8Array, fam: 4 | 6, n: number): number {
    let udp: number; // offset of the UDP header; -1 for a non-first fragment
    let frag = false;
    if (fam === 4) {
      if (packet[9] !== 17) return NOT_OURS;
      const ihl = (packet[0]! & 0x0f) * 4;
      const offset = ((packet[6]! & 0x1f) << 8) | packet[7]!;
      frag = offset !== 0 || (packet[6]! & 0x20) !== 0;
      udp = offset !== 0 ? -1 : ihl;
    } else if (packet[6] === 17) {
      udp = 40;
    } else {
      // A fragment header first: next header, reserved, offset (13 bits) and M, identification.
      if (n < 48) return NOT_OURS;
      const offset = ((packet[42]! << 8) | packet[43]!) >>> 3;
      if (offset === 0 && packet[40] !== 17) return NOT_OURS;
      frag = true;
      udp = offset !== 0 ? -1 : 48;
    }
    // The key of a fragment's datagram is built only where a verdict is looked up or kept.
    if (udp < 0) return this.fragKeys.length === 0 ? NOT_OURS : this.fragmentVerdict(fragmentKey(packet, fam));
    const w = udp + 8;
    if (w + WG_HEADER > n) return NOT_OURS;
    const parties = this.registry.partiesOn((packet[udp]! << 8) | packet[udp + 1]!);
    if (parties === undefined) return NOT_OURS;
    const type = packet[w]!;
    if (type < 1 || type > 4 || packet[w + 1] !== 0 || packet[w + 2] !== 0 || packet[w + 3] !== 0) return NOT_OURS;
    let verdict = NOT_OURS;
    let carry: CarriedMessage | null = null;
    for (const owner of parties) {
      if (!owner.ownsMessage(packet, w)) continue;
      if (owner === this.self) {
        verdict = LOOP;
        break;
      }
      // Another device's message: a loop if the chain of what it carried leads back here.
      verdict = CARRIED;
      carry = type === 4 ? { owner, receiver: readU32(packet, w + 4), counter: readU64(packet, w + 8) } : null;
      if (type === 4 && this.chainReachesSelf(carry!)) {
        verdict = LOOP;
        break;
      }
    }
    if (frag && verdict !== NOT_OURS) this.rememberFragment(fragmentKey(packet, fam), verdict, carry);
    this.pending = verdict === CARRIED ? carry : null;
    return verdict;
  }

  /** After a CARRIED packet went out as our transport message (receiver, counter). */
  recordCarry(receiver: number, counter: number): void {
    const c = this.pending;
    this.pending = null;
    if (c === null) return;
    if (this.carries.size >= CARRY_MEMORY) this.carries.delete(this.carries.keys().next().value!);
    this.carries.set(`${receiver}:${counter}`, c);
  }

  private chainReachesSelf(start: CarriedMessage): boolean {
    let c: CarriedMessage | undefined = start;
    for (let i = 0; c !== undefined && i < MAX_CHAIN; i++) {
      c = c.owner.carried(c.receiver, c.counter);
      if (c !== undefined && c.owner === this.self) return true;
    }
    return false;
  }

  private fragmentVerdict(key: string): number {
    const i = this.fragKeys.indexOf(key);
    if (i < 0) return NOT_OURS;
    const v = this.fragVerdicts[i]!;
    this.pending = v === CARRIED ? this.fragCarry[i]! : null;
    return v;
  }

  private rememberFragment(key: string, verdict: number, carry: CarriedMessage | null): void {
    const i = this.fragNext;
    this.fragKeys[i] = key;
    this.fragVerdicts[i] = verdict;
    this.fragCarry[i] = carry;
    this.fragNext = (i + 1) % FRAGMENT_MEMORY;
  }

  /** Forget everything (the device closes). */
  clear(): void {
    this.registry.unbind(this.self);
    this.fragKeys.length = this.fragVerdicts.length = this.fragCarry.length = 0;
    this.carries.clear();
    this.pending = null;
  }
}

/** What identifies the datagram a fragment belongs to: family, addresses, identification. */
function fragmentKey(packet: Uint8Array, fam: 4 | 6): string {
  if (fam === 4) return `4 ${readU32(packet, 12)} ${readU32(packet, 16)} ${(packet[4]! << 8) | packet[5]!}`;
  let key = '6';
  for (let i = 8; i < 40; i += 4) key += ` ${readU32(packet, i)}`;
  return `${key} ${readU32(packet, 44)}`;
}
