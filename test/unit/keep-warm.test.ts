import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KEEP_WARM_MS, KEEP_WARM_WINDOW_MS, KeepWarm } from '../../src/keep-warm.js';
import { ROOT } from '../helpers/proc.js';

describe('KeepWarm', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ticks while input batches come and stops a window after the last one', () => {
    const k = new KeepWarm(true, 10, 100);
    expect(k.running).toBe(false);
    k.touch();
    expect(k.running).toBe(true);
    // Traffic every 30 ms for 300 ms: it ticks every 10 ms throughout.
    for (let t = 0; t < 300; t += 30) {
      k.touch();
      vi.advanceTimersByTime(30);
    }
    expect(k.ticks).toBe(30);
    expect(k.running).toBe(true);
    // Quiet since the last batch, 30 ms ago: it stops at the first tick a window after it.
    vi.advanceTimersByTime(70);
    expect(k.running).toBe(true);
    vi.advanceTimersByTime(10);
    expect(k.running).toBe(false);
    const ticks = k.ticks;
    vi.advanceTimersByTime(1000);
    expect(k.ticks).toBe(ticks);
    // The next batch starts it again, with a whole window.
    k.touch();
    expect(k.running).toBe(true);
    vi.advanceTimersByTime(100);
    expect(k.running).toBe(true);
    vi.advanceTimersByTime(10);
    expect(k.running).toBe(false);
    expect(k.ticks).toBe(ticks + 11);
  });

  it('never runs when disabled, and stop() stops it at once', () => {
    const off = new KeepWarm(false);
    off.touch();
    vi.advanceTimersByTime(1000);
    expect(off.running).toBe(false);
    expect(off.ticks).toBe(0);
    const on = new KeepWarm();
    on.touch();
    vi.advanceTimersByTime(KEEP_WARM_MS * 3);
    expect(on.ticks).toBe(3);
    on.stop();
    vi.advanceTimersByTime(KEEP_WARM_MS * 3);
    expect(on.ticks).toBe(3);
    expect(on.running).toBe(false);
  });

  it('spans the keepalive timeout by default', () => {
    const k = new KeepWarm();
    k.touch();
    vi.advanceTimersByTime(KEEP_WARM_WINDOW_MS);
    expect(k.running).toBe(true);
    vi.advanceTimersByTime(KEEP_WARM_MS);
    expect(k.running).toBe(false);
    expect(KEEP_WARM_WINDOW_MS).toBe(10_000);
  });
});

describe('KeepWarm in a process', () => {
  it('keeps no process alive, and WG_TS_KEEP_WARM=0 turns the process one off', () => {
    const mod = pathToFileURL(join(ROOT, 'dist', 'src', 'keep-warm.js')).href;
    const script = `const { KeepWarm } = await import(${JSON.stringify(mod)}); KeepWarm.process.touch(); console.log(KeepWarm.process.running);`;
    for (const [env, running] of [
      ['1', 'true'],
      ['0', 'false'],
    ] as const) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, WG_TS_KEEP_WARM: env },
        encoding: 'utf8',
        timeout: 5000,
      });
      // Exits at once although the tick (10 s window) is running: its timer is unref'd.
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(running);
    }
  });
});
