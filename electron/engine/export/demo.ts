/**
 * The runnable demo every export folder carries: index.html + demo.js (from resources/demo),
 * the browser runtime the model needs (onnxruntime-web's wasm build, or the TensorFlow.js
 * bundle, at the versions the studio pins), and a README saying how to serve it and how to run
 * the model from Node.
 */
import { constants } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { resourcesDir } from '../resources.js';
import { EXPORT_FORMAT_KINDS } from '../../../shared/deployment.js';
import { DEMO_FILES, EXPORT_FILES, writeFileFlushed } from './folder.js';
import type { ModelCard } from './modelCard.js';

const require = createRequire(import.meta.url);

/** Where each runtime file comes from: the installed npm packages' dist folders. */
function runtimeSources(runtime: 'tfjs' | 'onnx'): [source: string, name: string][] {
  if (runtime === 'onnx') {
    const dist = dirname(require.resolve('onnxruntime-web'));
    // The .mjs bundle is saved as .js: static servers that do not know .mjs would send it with a MIME type browsers refuse for modules.
    return [
      [join(dist, 'ort.wasm.bundle.min.mjs'), DEMO_FILES.onnxRuntime],
      [join(dist, 'ort-wasm-simd-threaded.wasm'), DEMO_FILES.onnxWasm],
    ];
  }
  return [[join(dirname(require.resolve('@tensorflow/tfjs')), 'tf.min.js'), DEMO_FILES.tfjsBundle]];
}

function readme(card: ModelCard): string {
  const onnx = EXPORT_FORMAT_KINDS[card.format].runtime === 'onnx';
  const [, height, width, channels] = card.preprocessing.shape;
  const node = onnx
    ? [
        '```js',
        "import * as ort from 'onnxruntime-node';",
        "const session = await ort.InferenceSession.create('model.onnx');",
        `// x: Float32Array of N * ${height} * ${width} * ${channels} values, NHWC, preprocessed as below.`,
        `const results = await session.run({ ${card.preprocessing.input}: new ort.Tensor('float32', x, [N, ${height}, ${width}, ${channels}]) });`,
        `const logits = results['${card.exits.at(-1)!.output}'].data; // [N, ${card.dataset.classes.length}]`,
        '```',
      ]
    : [
        '```js',
        "import * as tf from '@tensorflow/tfjs-node';",
        "const model = await tf.loadLayersModel('file://' + process.cwd() + '/model.json');",
        `const logits = model.predict(tf.tensor4d(x, [N, ${height}, ${width}, ${channels}])); // x preprocessed as below`,
        '```',
      ];
  return [
    `# ${card.title}`,
    '',
    'A model exported by Mw Studio; `MODEL_CARD.md` describes it (accuracy, sizes, latency, preprocessing).',
    '',
    '## Try it in a browser',
    '',
    'Serve this folder with any static web server and open the page, for example:',
    '',
    '```sh',
    'npx http-server -p 8080 .      # or: python3 -m http.server 8080',
    '# then open http://127.0.0.1:8080/',
    '```',
    '',
    `Pick an image: the page resizes it to ${width}x${height}, prepares it as the model card says, runs the model ` +
      (onnx ? 'with onnxruntime-web (WebAssembly)' : 'with TensorFlow.js') +
      ' and lists the most probable classes' +
      (card.earlyExit ? ', with the exit that answered and its cost.' : '.'),
    'Opening index.html as a file does not work: browsers do not let pages read files next to them.',
    '',
    '## Run it from Node',
    '',
    ...node,
    '',
    `Input preprocessing: \`${card.preprocessing.formula}\` with mean ${JSON.stringify(card.preprocessing.mean)} and std ${JSON.stringify(card.preprocessing.std)}.`,
    '',
    'Or from the command line: `npx mw-studio predict --model <this folder> image.png`.',
    '',
  ].join('\n');
}

/** Writes the demo page, its script, the browser runtime and the README into `dir`. */
export async function writeDemo(dir: string, card: ModelCard): Promise<void> {
  const demo = join(resourcesDir(), 'demo');
  const copies: [string, string][] = [
    [join(demo, 'index.html'), DEMO_FILES.page],
    [join(demo, 'demo.js'), DEMO_FILES.script],
    ...runtimeSources(EXPORT_FORMAT_KINDS[card.format].runtime),
  ];
  // Copy-on-write where the file system offers it: the wasm runtime is 14 MB.
  for (const [source, name] of copies) await copyFile(source, join(dir, name), constants.COPYFILE_FICLONE);
  await writeFileFlushed(join(dir, EXPORT_FILES.readme), readme(card));
}
