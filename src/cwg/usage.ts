/** Usage texts of `cwg` and its commands (printed on stdout for --help). */
import { CONFIG_PATH, DEFAULT_PREFIX, PREFIX_ENV } from './config.js';

export const COMMANDS = ['cwg_create', 'cwg_connect', 'cwg_destroy', 'show', 'genkey', 'pubkey', 'genpsk'] as const;
export type Command = (typeof COMMANDS)[number];

export function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}

const SYNOPSIS: Record<Command, string> = {
  cwg_create: 'cwg_create <pid> <net> <host> <port>',
  cwg_connect: 'cwg_connect <pid> <net> <host> <peer_endpoint> <peer_key>',
  cwg_destroy: 'cwg_destroy <pid> <net> <host>',
  show: 'show <pid> <net> <host>',
  genkey: 'genkey',
  pubkey: 'pubkey',
  genpsk: 'genpsk',
};

export function synopsis(cmd: Command): string {
  return SYNOPSIS[cmd];
}

const ARGS = `Arguments:
  <pid>            a process whose network namespace (/proc/<pid>/ns/net) holds the device
  <net>            network number 0..8388607: the /31 at 10.0.0.0 + 2*net
                   (0 -> 10.0.0.0/31, 1024 -> 10.0.8.0/31, 8388607 -> 10.255.255.254/31)
  <host>           0 or 1: the device's address is 10.0.0.0 + 2*net + host
  <port>           1..65535: the UDP port, in the namespace where cwg runs
  <peer_endpoint>  a.b.c.d:port or [IPv6]:port of the peer's site
  <peer_key>       the peer's public key (44 characters of base64)
Numbers are decimal digits only, without leading zeros.`;

const DETAIL: Record<Command, string> = {
  cwg_create: `Create the WireGuard device <prefix>-<net>-<host> inside the network namespace of <pid>,
address 10.0.0.0+2*net+host/31, up, with a fresh private key that never leaves this host and
its UDP socket on <port> in the current namespace. Prints the public key (base64) and a newline.`,
  cwg_connect: `Set the one peer of the local device <prefix>-<net>-<host> (<host> is the LOCAL device's host
number): its public key, its endpoint and allowed IPs = the network's /31. Calling it again
replaces the peer.`,
  cwg_destroy: `Remove the device <prefix>-<net>-<host> from the namespace of <pid>, with its daemon and UDP
port. A device that does not exist is an error.`,
  show: `Print the device as 'wg show' prints it (private keys are always hidden).`,
  genkey: `Print a new private key (base64, clamped), as 'wg genkey'.`,
  pubkey: `Read a private key (base64) on standard input, print its public key, as 'wg pubkey'.`,
  genpsk: `Print a new preshared key (base64), as 'wg genpsk'.`,
};

export function commandUsage(cmd: Command): string {
  const needsArgs = cmd === 'cwg_create' || cmd === 'cwg_connect' || cmd === 'cwg_destroy' || cmd === 'show';
  return `Usage: cwg ${SYNOPSIS[cmd]}\n\n${DETAIL[cmd]}\n${needsArgs ? `\n${ARGS}\n` : ''}\nExit status: 0 on success; 1 with one line on standard error otherwise.\n`;
}

export function mainUsage(): string {
  return `Usage: cwg <command> [<arguments>]

Container WireGuard links (a drop-in for net-admin-helper's cwg_* commands), on a userspace
WireGuard daemon (wireguard-ts): no kernel module needed.

  cwg ${SYNOPSIS.cwg_create}
      create the device <prefix>-<net>-<host> in the container; prints its public key
  cwg ${SYNOPSIS.cwg_connect}
      set the peer of the local device <prefix>-<net>-<host>
  cwg ${SYNOPSIS.cwg_destroy}
      remove the device, its daemon and its UDP port
  cwg ${SYNOPSIS.show}
      print the device as 'wg show' does
  cwg genkey | pubkey | genpsk
      key tools, as 'wg genkey | pubkey | genpsk'

The commands are also installed as cwg_create, cwg_connect and cwg_destroy.

${ARGS}

Device names are <prefix>-<net>-<host>; the prefix is read from ${CONFIG_PATH} (root-owned,
'prefix = NAME'), else from the environment variable ${PREFIX_ENV}, else '${DEFAULT_PREFIX}'. The file wins.
'cwg <command> --help' describes one command. Exit status: 0 on success; 1 with one line on
standard error otherwise. See docs/CWG.md.
`;
}
