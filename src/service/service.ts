/**
 * The host service: every cwg device of this network namespace in one process (docs/SERVICE.md).
 * It answers control requests with the contract's commands (src/cwg/commands.ts) over the
 * registry, recovers the recorded devices when it starts, and keeps one warmed-up JIT for all.
 */
import { readFileSync } from 'node:fs';
import type { CryptoSuite } from '../../crypto/suite.js';
import type { Logger } from '../../noise/types.js';
import { type CwgConfig, loadConfig } from '../cwg/config.js';
import { CwgError } from '../cwg/errors.js';
import { type RunResult, run } from '../cwg/run.js';
import { type ControlRequest, type ControlResponse, ControlServer } from './control.js';
import { requestSystem } from './cwg-system.js';
import type { ServiceOs } from './os.js';
import { type RecoveryResult, recover } from './recovery.js';
import { Registry } from './registry.js';
import { StateStore } from './state.js';

export interface ServiceOptions {
  readonly os: ServiceOs;
  readonly crypto: CryptoSuite;
  readonly logger: Logger;
  /** The administrator's configuration file (default /etc/wireguard-ts/cwg.conf). */
  readonly configPath?: string;
  /** The service's own environment, for CWG_PREFIX (a client's never reaches here). */
  readonly env?: NodeJS.ProcessEnv;
  readonly stateDir: string;
  readonly runBase?: string;
  /** Namespaces refused unless allow_host_namespace: cookie -> how to name it in a message. */
  readonly hostNamespaces: ReadonlyMap<string, string>;
  readonly deviceLogger?: (name: string) => Logger;
}

/** The gid of group `name` in /etc/group, or null. */
export function groupId(name: string, groupFile = '/etc/group'): number | null {
  let text: string;
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3 && /^[0-9]+$/.test(f[2]!)) return Number(f[2]);
  }
  return null;
}

export class Service {
  readonly registry: Registry;
  readonly state: StateStore;
  readonly control: ControlServer;
  recovery: RecoveryResult = { recovered: 0, forgotten: 0, failed: 0 };

  constructor(private readonly opts: ServiceOptions) {
    this.state = new StateStore(opts.stateDir);
    this.registry = new Registry({
      os: opts.os,
      state: this.state,
      crypto: opts.crypto,
      logger: opts.logger,
      ...(opts.runBase !== undefined ? { runBase: opts.runBase } : {}),
      ...(opts.deviceLogger !== undefined ? { deviceLogger: opts.deviceLogger } : {}),
    });
    this.control = new ControlServer((req) => this.handle(req), opts.logger);
  }

  /** Make the recorded devices again (before serving requests). */
  async recover(): Promise<RecoveryResult> {
    this.recovery = await recover(this.opts.os, this.state, this.registry, this.opts.logger);
    const swept = await this.registry.sweepStale();
    if (swept > 0) this.opts.logger.verbose(`removed ${swept} UAPI sockets left by a killed service`);
    return this.recovery;
  }

  private config(): CwgConfig {
    return loadConfig({ ...(this.opts.configPath !== undefined ? { path: this.opts.configPath } : {}), env: this.opts.env ?? {} });
  }

  /** One request: the contract's command, with this caller's rights and this namespace. */
  async handle(req: ControlRequest): Promise<ControlResponse> {
    const result: RunResult = await run(req.argv, {
      readStdin: async () => new Uint8Array(0),
      stdoutIsTty: false,
      stdoutWorldAccessible: false,
      env: {},
      context: async () => {
        const config = this.config(); // read afresh: an edit applies to the next request
        const allowedGid = config.group === null ? null : groupId(config.group);
        if (config.group !== null && allowedGid === null && req.caller.uid !== 0) {
          throw new CwgError(`the group ${config.group} of the configuration does not exist`);
        }
        const sys = requestSystem({
          caller: req.caller,
          ns: req.ns,
          config,
          allowedGid,
          os: this.opts.os,
          registry: this.registry,
          hostNamespaces: this.opts.hostNamespaces,
        });
        return { prefix: config.prefix, sys, signal: req.signal };
      },
    });
    return result;
  }

  /** Stop serving; the devices go, their records stay for the next start. */
  async close(): Promise<void> {
    await this.control.close();
    await this.registry.closeAll();
  }
}
