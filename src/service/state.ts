/**
 * The service's record of each device, for crash recovery: what it takes to make the device
 * again (its container namespace's identity, name, address, port, private key, peer). One file
 * per device in a root-only directory (0700), each file 0600, written atomically (a temporary
 * file, fsync, rename), so a service killed at any moment leaves either the old record or the
 * new one. Private keys are stored here and nowhere else.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeHexKey, encodeHexKey } from '../../crypto/keys.js';

/** A device as recorded. */
export interface DeviceRecord {
  /** SO_NETNS_COOKIE of the container's namespace. */
  readonly nsKey: string;
  /** Its inode (a cheap first filter when looking for it again; the cookie decides). */
  readonly nsInode: number;
  readonly name: string;
  readonly net: number;
  readonly host: 0 | 1;
  readonly port: number;
  readonly privateKey: Uint8Array;
  /** The one peer cwg_connect set, if any. */
  readonly peer: { readonly publicKey: Uint8Array; readonly endpoint: string } | null;
}

const VERSION = 1;
/** Records larger than this are not ours (a record is ~400 bytes). */
const MAX_RECORD = 4096;

interface RecordJson {
  version: number;
  nsKey: string;
  nsInode: number;
  name: string;
  net: number;
  host: number;
  port: number;
  privateKey: string;
  peer: { publicKey: string; endpoint: string } | null;
}

/** The directory must be ours alone: a real directory, owned by us, no access for others. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new Error(`state directory ${dir} must be a directory owned by uid ${uid} with mode 0700`);
  }
}

export class StateStore {
  constructor(readonly dir: string) {}

  private fileOf(nsKey: string, name: string): string {
    return join(this.dir, `${nsKey}-${name}.json`);
  }

  save(r: DeviceRecord): void {
    ensurePrivateDir(this.dir);
    const json: RecordJson = {
      version: VERSION,
      nsKey: r.nsKey,
      nsInode: r.nsInode,
      name: r.name,
      net: r.net,
      host: r.host,
      port: r.port,
      privateKey: encodeHexKey(r.privateKey),
      peer: r.peer ? { publicKey: encodeHexKey(r.peer.publicKey), endpoint: r.peer.endpoint } : null,
    };
    const file = this.fileOf(r.nsKey, r.name);
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(json)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }

  delete(nsKey: string, name: string): void {
    try {
      unlinkSync(this.fileOf(nsKey, name));
    } catch {
      /* not there */
    }
  }

  /** Every readable record; files that are not records (torn temporaries, garbage) are removed. */
  load(): DeviceRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: DeviceRecord[] = [];
    for (const n of names) {
      const file = join(this.dir, n);
      const r = n.endsWith('.json') ? parseRecord(file) : null;
      if (r) out.push(r);
      else {
        try {
          unlinkSync(file);
        } catch {
          /* raced */
        }
      }
    }
    return out;
  }
}

function parseRecord(file: string): DeviceRecord | null {
  try {
    const st = lstatSync(file);
    if (!st.isFile() || st.size > MAX_RECORD) return null;
    const j = JSON.parse(readFileSync(file, 'utf8')) as RecordJson;
    if (j.version !== VERSION || typeof j.nsKey !== 'string' || !/^[0-9]{1,20}$/.test(j.nsKey)) return null;
    if (!Number.isSafeInteger(j.nsInode) || typeof j.name !== 'string' || !Number.isInteger(j.net)) return null;
    if ((j.host !== 0 && j.host !== 1) || !Number.isInteger(j.port) || j.port < 1 || j.port > 65535) return null;
    const peer = j.peer === null ? null : { publicKey: decodeHexKey(j.peer.publicKey), endpoint: String(j.peer.endpoint) };
    return { nsKey: j.nsKey, nsInode: j.nsInode, name: j.name, net: j.net, host: j.host, port: j.port, privateKey: decodeHexKey(j.privateKey), peer };
  } catch {
    return null;
  }
}
