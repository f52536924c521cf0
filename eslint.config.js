/**
 * Lint: the folders are layers, and these rules keep imports flowing one way (README,
 * "Architecture"). `npm test` runs it; test/unit/lintBoundaries.test.ts shows that an import
 * across a boundary fails it.
 *
 * - renderer/ imports only shared/ (and its own files); shared/ imports no project folder.
 * - The engine's layers, lowest first: root helpers -> onnx -> backend -> models -> data, runs
 *   -> evaluate -> train -> export, analysis -> session, study, slurm, host, worker. A folder imports only
 *   from its own layer or below; the engine imports nothing of the faces or the shell.
 * - The faces (cli, bench, main, serve, relay) reach the engine only through its index.
 * - electron/base/ (crash-safe writes) sits under both the engine and the shell.
 * - No import cycles anywhere.
 * - An engine folder's index.ts only re-exports: its code lives in files named for what they do.
 *   (The entry points of the desktop shell and the bench, electron/main/ and electron/bench/,
 *   keep their code: they are not engine folders.)
 */
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import vueParser from 'vue-eslint-parser';

const ENGINE = './electron/engine';

/** The engine's layers, lowest first; each entry lists the paths (relative to the project) in it. */
const ENGINE_LAYERS = [
  ['errors.ts', 'random.ts', 'timing.ts', 'resources.ts'],
  ['onnx'],
  ['backend'],
  ['models'],
  ['data', 'runs'],
  ['evaluate'],
  ['train'],
  ['export', 'analysis'],
  ['session.ts', 'study.ts', 'slurm.ts', 'slurmStudy.ts', 'host.ts', 'worker.ts', 'index.ts'],
].map((layer) => layer.map((path) => `${ENGINE}/${path}`));

/** One zone per layer: it may not import from any layer above it. */
const engineLayerZones = ENGINE_LAYERS.slice(0, -1).map((layer, i) => ({
  target: layer,
  from: ENGINE_LAYERS.slice(i + 1).flat(),
  message: 'the engine imports only from its own layer or below (electron/engine/index.ts lists the order)',
}));

const FACES = [
  './electron/cli',
  './electron/bench',
  './electron/main',
  './electron/serve',
  './electron/relay',
  './electron/preload',
];

const boundaryZones = [
  {
    target: './renderer',
    from: ['./electron', './test', './scripts', './bin'],
    message: 'the renderer imports only shared/ (it talks to the engine through window.studio or its socket client)',
  },
  {
    target: './shared',
    from: ['./electron', './renderer', './test', './scripts', './bin'],
    message: 'shared/ is the contract every face speaks: it imports no project folder',
  },
  {
    target: './electron/engine',
    from: [...FACES, './renderer'],
    message: 'the engine is plain Node: it imports nothing of the faces, the shell or the renderer',
  },
  {
    target: './electron/base',
    from: ['./electron/engine', ...FACES, './renderer'],
    message: 'electron/base/ sits under the engine and the shell and imports neither',
  },
  {
    target: FACES,
    from: ENGINE,
    except: ['./index.ts'],
    message: 'the faces reach the engine only through electron/engine/index.ts: export what you need there',
  },
  ...engineLayerZones,
];

export default tseslint.config(
  {
    ignores: ['node_modules/', 'out/', 'dist/', 'test-results/', 'runs/', 'release/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,vue,js}'],
    plugins: { 'import-x': importX },
    languageOptions: {
      // Also used when the cycle check parses an imported .vue file from a .ts one.
      parserOptions: { parser: tseslint.parser, sourceType: 'module' },
    },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: ['tsconfig.json', 'tsconfig.web.json'],
          noWarnOnMultipleProjects: true,
        }),
      ],
      'import-x/extensions': ['.ts', '.vue', '.js'],
      // The cycle check parses imported files itself: .vue ones need the Vue parser.
      'import-x/parsers': { 'vue-eslint-parser': ['.vue'], '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: boundaryZones }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // TypeScript checks these (tsc and vue-tsc run in npm test), with better messages.
      'no-undef': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['electron/engine/**/index.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'Program > :not(ExportNamedDeclaration[source], ExportAllDeclaration)',
          message:
            "an engine folder's index.ts only re-exports (export { name } from './file.js'): move this into a file named for what it does",
        },
      ],
    },
  },
  {
    files: ['**/*.vue'],
    languageOptions: {
      parser: vueParser,
      parserOptions: { parser: tseslint.parser, sourceType: 'module', extraFileExtensions: ['.vue'] },
    },
  },
);
