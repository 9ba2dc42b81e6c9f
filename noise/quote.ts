/**
 * How text that came from outside (a UAPI line, a command-line argument) appears inside an
 * error message: quoted, control characters shown as '?', cut after QUOTE_MAX characters, so
 * that one message stays one short line whatever the input was. Never pass key material.
 */
export const QUOTE_MAX = 64;

export function quote(s: string, mark: '"' | "'" = '"'): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  const cut = clean.length > QUOTE_MAX ? `${clean.slice(0, QUOTE_MAX - 3)}...` : clean;
  return mark === '"' ? JSON.stringify(cut) : `'${cut}'`;
}
