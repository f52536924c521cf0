/**
 * The window's size, position and maximized flag, remembered between sessions in
 * userData/window-state.json. What is read back is checked against the displays present now:
 * a monitor may have been unplugged, and the file may be corrupt or hand-edited, so the window
 * never opens off-screen, larger than the screen, or not at all.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeJsonAtomic } from '../base/files.js';

export interface Rectangle {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  /** Without x and y the window is centred. */
  bounds: { width: number; height: number; x?: number; y?: number };
  maximized: boolean;
}

export const DEFAULT_WINDOW_STATE: WindowState = { bounds: { width: 1280, height: 820 }, maximized: false };

/** Below this the views' tables and charts no longer fit side by side. */
export const MIN_WINDOW_SIZE = { width: 900, height: 600 };

/** A restored position is kept only if this much of the title bar lies on a display, so it can be grabbed. */
const TITLE_BAR = { height: 32, minVisibleWidth: 100 };

const coordinate = z.number().int().min(-100_000).max(100_000);
const length = z.number().int().positive().max(100_000);

const StoredWindowStateSchema = z.object({
  bounds: z.object({ x: coordinate, y: coordinate, width: length, height: length }),
  maximized: z.boolean(),
});

function titleBarIsVisible(bounds: Rectangle, area: Rectangle): boolean {
  const left = Math.max(bounds.x, area.x);
  const right = Math.min(bounds.x + bounds.width, area.x + area.width);
  const insideVertically = bounds.y >= area.y && bounds.y + TITLE_BAR.height <= area.y + area.height;
  return insideVertically && right - left >= TITLE_BAR.minVisibleWidth;
}

/** `wanted`, raised to `minimum`, but never beyond what the display offers. */
function fitLength(wanted: number, minimum: number, available: number): number {
  return Math.min(Math.max(wanted, minimum), available);
}

/**
 * The state to open the window with, given what was stored (anything) and the work areas of
 * the displays now attached (the primary first). Invalid input gives the defaults; a window
 * too large for its display shrinks to it; one whose title bar is on no display is centred.
 */
export function sanitizeWindowState(stored: unknown, workAreas: readonly Rectangle[]): WindowState {
  const parsed = StoredWindowStateSchema.safeParse(stored);
  const primary = workAreas[0];
  if (!parsed.success || !primary) return structuredClone(DEFAULT_WINDOW_STATE);
  const { bounds, maximized } = parsed.data;
  const home = workAreas.find((area) => titleBarIsVisible(bounds, area));
  const area = home ?? primary;
  const size = {
    width: fitLength(bounds.width, MIN_WINDOW_SIZE.width, area.width),
    height: fitLength(bounds.height, MIN_WINDOW_SIZE.height, area.height),
  };
  return { bounds: home ? { ...size, x: bounds.x, y: bounds.y } : size, maximized };
}

/** The stored state, sanitised; a missing or unreadable file gives the defaults. */
export async function loadWindowState(file: string, workAreas: readonly Rectangle[]): Promise<WindowState> {
  let stored: unknown;
  try {
    stored = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    stored = undefined; // first start, or a torn/corrupt file: either way, the defaults
  }
  return sanitizeWindowState(stored, workAreas);
}

/** Written to a temporary file and renamed, so a crash mid-write cannot corrupt it. */
export function saveWindowState(file: string, state: { bounds: Rectangle; maximized: boolean }): Promise<void> {
  return writeJsonAtomic(file, state);
}
