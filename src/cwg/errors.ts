/**
 * The one error type of the cwg commands: its message is the whole line printed on stderr
 * (after the command name). Anything else that escapes is a bug, still reported on one line.
 */
export class CwgError extends Error {
  override name = 'CwgError';
}

/** The message of an unknown thrown value, on one line. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.replace(/\s*\n\s*/g, '; ').trim();
  return line || 'unknown error';
}
