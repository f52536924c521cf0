/** Window bounds read back from disk are made safe for the displays present now. */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_WINDOW_STATE,
  loadWindowState,
  MIN_WINDOW_SIZE,
  sanitizeWindowState,
  saveWindowState,
} from '../../../electron/main/windowState.js';

const laptop = { x: 0, y: 0, width: 1920, height: 1040 };
/** A second monitor to the left of the primary one: negative x is a real place there. */
const leftMonitor = { x: -2560, y: 0, width: 2560, height: 1400 };

describe('sanitizeWindowState', () => {
  it('keeps a state that fits a display', () => {
    const stored = { bounds: { x: 100, y: 50, width: 1400, height: 900 }, maximized: true };
    expect(sanitizeWindowState(stored, [laptop])).toEqual(stored);
  });

  it('keeps negative coordinates on a display that has them', () => {
    const stored = { bounds: { x: -2000, y: 100, width: 1600, height: 1000 }, maximized: false };
    expect(sanitizeWindowState(stored, [laptop, leftMonitor])).toEqual(stored);
  });

  it('centres a window whose title bar is on no display (monitor unplugged, off-screen)', () => {
    const unplugged = { bounds: { x: -2000, y: 100, width: 1600, height: 1000 }, maximized: false };
    expect(sanitizeWindowState(unplugged, [laptop])).toEqual({
      bounds: { width: 1600, height: 1000 },
      maximized: false,
    });
    const belowScreen = { bounds: { x: 200, y: 5000, width: 1000, height: 700 }, maximized: false };
    expect(sanitizeWindowState(belowScreen, [laptop]).bounds).toEqual({ width: 1000, height: 700 });
    const titleBarAboveTop = { bounds: { x: 200, y: -20, width: 1000, height: 700 }, maximized: false };
    expect(sanitizeWindowState(titleBarAboveTop, [laptop]).bounds).toEqual({ width: 1000, height: 700 });
    const onlyAnEdgeVisible = { bounds: { x: 1880, y: 100, width: 1000, height: 700 }, maximized: false };
    expect(sanitizeWindowState(onlyAnEdgeVisible, [laptop]).bounds).not.toHaveProperty('x');
  });

  it('shrinks a window larger than its display and grows one below the minimum', () => {
    const huge = { bounds: { x: 0, y: 0, width: 50_000, height: 30_000 }, maximized: false };
    expect(sanitizeWindowState(huge, [laptop]).bounds).toEqual({ x: 0, y: 0, width: 1920, height: 1040 });
    const tiny = { bounds: { x: 10, y: 10, width: 120, height: 80 }, maximized: false };
    expect(sanitizeWindowState(tiny, [laptop]).bounds).toEqual({ x: 10, y: 10, ...MIN_WINDOW_SIZE });
  });

  it('gives the defaults for anything that is not a window state', () => {
    for (const stored of [
      undefined,
      null,
      'big',
      { bounds: { x: 0, y: 0, width: -800, height: 600 }, maximized: false },
      { bounds: { x: 0, y: 0, width: 0, height: 600 }, maximized: false },
      { bounds: { x: 0, y: 0, width: 800.5, height: 600 }, maximized: false },
      { bounds: { x: 0, y: 0, width: 800, height: 600 }, maximized: 'yes' },
      { bounds: { x: 1e300, y: 0, width: 800, height: 600 }, maximized: false },
      { maximized: true },
    ]) {
      expect(sanitizeWindowState(stored, [laptop])).toEqual(DEFAULT_WINDOW_STATE);
    }
  });

  it('gives the defaults when no display is known', () => {
    expect(sanitizeWindowState({ bounds: { x: 0, y: 0, width: 1000, height: 700 }, maximized: false }, [])).toEqual(
      DEFAULT_WINDOW_STATE,
    );
  });
});

describe('window-state.json', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-window-state-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('round-trips through an atomic write, leaving no temporary file', async () => {
    const file = join(dir, 'window-state.json');
    const state = { bounds: { x: 40, y: 30, width: 1300, height: 850 }, maximized: true };
    await saveWindowState(file, state);
    expect(await readdir(dir)).toEqual(['window-state.json']);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(state);
    expect(await loadWindowState(file, [laptop])).toEqual(state);
  });

  it('falls back to the defaults for a missing, corrupt or empty file', async () => {
    expect(await loadWindowState(join(dir, 'missing.json'), [laptop])).toEqual(DEFAULT_WINDOW_STATE);
    const corrupt = join(dir, 'corrupt.json');
    await writeFile(corrupt, '{"bounds": {"x": 10, "y"');
    expect(await loadWindowState(corrupt, [laptop])).toEqual(DEFAULT_WINDOW_STATE);
    const empty = join(dir, 'empty.json');
    await writeFile(empty, '');
    expect(await loadWindowState(empty, [laptop])).toEqual(DEFAULT_WINDOW_STATE);
  });
});
