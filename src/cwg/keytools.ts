/**
 * `cwg genkey | pubkey | genpsk`, behaving as `wg genkey | pubkey | genpsk`: the same input
 * rules, messages (with "cwg" for "wg") and exit codes. Pure functions over bytes, so the CLI
 * does the I/O and tests need no processes.
 */
import { encodeBase64Key } from '../../crypto/keys.js';
import { type Rng, randomBytes, systemRng } from '../../crypto/random.js';
import { generatePrivateKey, publicKey } from '../../crypto/x25519.js';

export const KEY_FORMAT_ERROR = 'Key is not the correct length or format';
export const TRAILING_ERROR = 'Trailing characters found after key';

/** The warning `wg genkey` gives when stdout is a regular file others can access. */
export const WORLD_ACCESSIBLE_WARNING = 'Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n';

/** A new clamped private key, base64, with a newline. */
export function genkey(rng: Rng = systemRng): string {
  return `${encodeBase64Key(generatePrivateKey(rng))}\n`;
}

/** 32 random bytes (a preshared key), base64, with a newline. */
export function genpsk(rng: Rng = systemRng): string {
  return `${encodeBase64Key(randomBytes(32, rng))}\n`;
}

export type PubkeyResult = { ok: true; output: string } | { ok: false; error: string };

// wg's char_is_space: ' ', '\t', '\n', '\v', '\f', '\r'; NUL is skipped too.
function skippable(c: number): boolean {
  return c === 0 || c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

const B64_CHAR = /^[A-Za-z0-9+/]$/;
const LAST_CHAR = /^[AEIMQUYcgkosw048]$/;

/**
 * `wg pubkey`: the first 44 bytes of stdin must be a canonical base64 key (no leading space);
 * after it only white space or NUL may follow.
 */
export function pubkey(input: Uint8Array): PubkeyResult {
  if (input.length < 44) return { ok: false, error: KEY_FORMAT_ERROR };
  for (let i = 44; i < input.length; i++) {
    if (!skippable(input[i]!)) return { ok: false, error: TRAILING_ERROR };
  }
  const text = Buffer.from(input.subarray(0, 44)).toString('latin1');
  // wg checks the length with strlen: a NUL inside the 44 bytes is a format error.
  for (let i = 0; i < 42; i++) if (!B64_CHAR.test(text[i]!)) return { ok: false, error: KEY_FORMAT_ERROR };
  if (!LAST_CHAR.test(text[42]!) || text[43] !== '=') return { ok: false, error: KEY_FORMAT_ERROR };
  const priv = new Uint8Array(Buffer.from(text, 'base64'));
  if (priv.length !== 32) return { ok: false, error: KEY_FORMAT_ERROR };
  const pub = publicKey(priv);
  priv.fill(0);
  return { ok: true, output: `${encodeBase64Key(pub)}\n` };
}
