/**
 * The layer rules of eslint.config.js hold: a file of the project, given one import across a
 * boundary (or one that closes a cycle), fails the lint that `npm test` runs, and the same file
 * as it is passes; so does code other than re-exports in an engine folder's index.ts. The files are
 * linted as text under their real paths, so nothing on disk changes.
 */
import { readFile } from 'node:fs/promises';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

/** The rule ids and messages that `extraCode`, added on top of the file at `path`, triggers. */
async function problemsWith(path: string, extraCode: string): Promise<string[]> {
  const text = `${extraCode}\n${await readFile(path, 'utf8')}`;
  const [result] = await eslint.lintText(text, { filePath: path });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the import boundaries', () => {
  it('pass on the files as they are', async () => {
    const files = [
      'renderer/src/api/socketClient.ts',
      'shared/api.ts',
      'electron/cli/main.ts',
      'electron/engine/models/layers.ts',
      'electron/main/windowState.ts',
      // Entry points with code of their own: the rule for the engine's index files leaves them be.
      'electron/main/index.ts',
      'electron/bench/index.ts',
      'electron/engine/index.ts',
      'electron/engine/backend/index.ts',
    ];
    const results = await eslint.lintFiles(files);
    expect(results.flatMap((r) => r.messages.map((m) => `${r.filePath}: ${m.ruleId} ${m.message}`))).toEqual([]);
  });

  it.each([
    [
      'the renderer importing the engine',
      'renderer/src/api/socketClient.ts',
      "import '../../../electron/engine/index.js';",
      /renderer imports only shared/,
    ],
    [
      'the renderer importing the shell',
      'renderer/src/stores/run.ts',
      "import '../../../electron/main/menu.js';",
      /renderer imports only shared/,
    ],
    [
      'shared/ importing the engine',
      'shared/api.ts',
      "import '../electron/engine/errors.js';",
      /shared\/ .* imports no project folder/,
    ],
    [
      'the engine importing the relay',
      'electron/engine/host.ts',
      "import '../relay/engineRelay.js';",
      /the engine is plain Node/,
    ],
    [
      'the engine importing the desktop shell',
      'electron/engine/session.ts',
      "import '../main/windowState.js';",
      /the engine is plain Node/,
    ],
    [
      'the CLI reaching past the engine index',
      'electron/cli/main.ts',
      "import '../engine/models/index.js';",
      /only through electron\/engine\/index.ts/,
    ],
    [
      'the desktop shell reaching past the engine index',
      'electron/main/windowState.ts',
      "import '../engine/runs/store.js';",
      /only through electron\/engine\/index.ts/,
    ],
    [
      'models importing train (a higher layer)',
      'electron/engine/models/layers.ts',
      "import '../train/methods.js';",
      /own layer or below/,
    ],
    [
      'backend importing export (a higher layer)',
      'electron/engine/backend/choice.ts',
      "import '../export/index.js';",
      /own layer or below/,
    ],
    [
      'evaluate importing export (the loop the layers removed)',
      'electron/engine/evaluate/accuracy.ts',
      "import '../export/index.js';",
      /own layer or below/,
    ],
    [
      'electron/base importing the engine',
      'electron/base/files.ts',
      "import '../engine/errors.js';",
      /electron\/base\/ sits under/,
    ],
  ])('fail on %s', async (_what, file, extraImport, message) => {
    const problems = await problemsWith(file, extraImport);
    expect(
      problems.some((p) => p.startsWith('import-x/no-restricted-paths') && message.test(p)),
      problems.join('\n'),
    ).toBe(true);
  });

  it.each([
    ['a function', 'electron/engine/export/index.ts', 'export function exportAll(): void {}'],
    ['an import', 'electron/engine/backend/index.ts', "import { initBackend } from './choice.js';"],
    ['a constant', 'electron/engine/index.ts', 'export const ENGINE_VERSION = 1;'],
  ])("fail on %s in an engine folder's index.ts", async (_what, file, code) => {
    const problems = await problemsWith(file, code);
    expect(
      problems.some((p) => p.startsWith('no-restricted-syntax') && /index\.ts only re-exports/.test(p)),
      problems.join('\n'),
    ).toBe(true);
  });

  it('fail on an import cycle', async () => {
    // network.ts imports layers.ts; layers.ts importing network.ts closes a loop.
    const problems = await problemsWith('electron/engine/models/layers.ts', "import './network.js';");
    expect(
      problems.some((p) => p.startsWith('import-x/no-cycle: Dependency cycle')),
      problems.join('\n'),
    ).toBe(true);
  });
});
