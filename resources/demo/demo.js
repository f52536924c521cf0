// The export's in-browser demo: loads the model next to this file (onnxruntime-web for ONNX,
// TensorFlow.js for tfjs), prepares an image exactly as model-card.json says, and shows the
// most probable classes; a multi-exit model answers with the first exit confident enough.
const $ = (id) => document.getElementById(id);
const TOP = 3;

async function loadScript(src) {
  await new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(script);
  });
}

/** A runner: preprocessed NHWC float32 pixels of one image -> logits per model output. */
async function loadModel(card) {
  const [, height, width, channels] = card.preprocessing.shape;
  if (card.files.includes('model.onnx')) {
    const ort = await import('./ort.wasm.bundle.min.js');
    // One thread: several need cross-origin isolation, which a plain static server does not give.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = { wasm: new URL('./ort-wasm-simd-threaded.wasm', import.meta.url).href };
    const session = await ort.InferenceSession.create('model.onnx');
    return async (x) => {
      const results = await session.run({
        [session.inputNames[0]]: new ort.Tensor('float32', x, [1, height, width, channels]),
      });
      return session.outputNames.map((name) => results[name].data);
    };
  }
  await loadScript('tf.min.js');
  const tf = window.tf;
  const model = await tf.loadLayersModel('model.json');
  return async (x) => {
    const input = tf.tensor4d(x, [1, height, width, channels]);
    const outputs = [model.predict(input)].flat();
    const values = await Promise.all(outputs.map((t) => t.data()));
    tf.dispose([input, ...outputs]);
    return values;
  };
}

/** Nearest-pixel resize to the model's size, gray = mean of R, G, B, then (v / 255 - mean[c]) / std[c]. */
function preprocess(bitmap, card) {
  const [, height, width, channels] = card.preprocessing.shape;
  const { mean, std } = card.preprocessing;
  const source = document.createElement('canvas');
  source.width = bitmap.width;
  source.height = bitmap.height;
  const context = source.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const x = new Float32Array(height * width * channels);
  const preview = $('preview');
  preview.width = width;
  preview.height = height;
  const shown = preview.getContext('2d').createImageData(width, height);
  for (let h = 0; h < height; h++) {
    const sy = Math.min(bitmap.height - 1, Math.floor((h * bitmap.height) / height));
    for (let w = 0; w < width; w++) {
      const sx = Math.min(bitmap.width - 1, Math.floor((w * bitmap.width) / width));
      const p = (sy * bitmap.width + sx) * 4;
      for (let c = 0; c < channels; c++) {
        const pixel = channels === 1 ? (rgba[p] + rgba[p + 1] + rgba[p + 2]) / 3 : rgba[p + c];
        x[(h * width + w) * channels + c] = (pixel / 255 - mean[c]) / std[c];
      }
      shown.data.set([rgba[p], rgba[p + 1], rgba[p + 2], 255], (h * width + w) * 4);
    }
  }
  preview.getContext('2d').putImageData(shown, 0, 0);
  return x;
}

function softmax(logits) {
  const largest = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - largest));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function show(card, outputs) {
  const probabilities = outputs.map((logits) => softmax(logits));
  const threshold = card.earlyExit?.threshold;
  let chosen = probabilities.length - 1;
  if (threshold !== undefined) {
    const found = probabilities.findIndex((p) => Math.max(...p) >= threshold);
    if (found !== -1) chosen = found;
  }
  const exit = card.exits[chosen];
  $('exit').textContent =
    card.exits.length > 1
      ? `Answered by ${exit.label} (${exit.macs.toLocaleString()} multiply-accumulates, ${exit.params.toLocaleString()} parameters; ${card.exits.length} exits in the model)`
      : `${exit.label}`;
  $('exit').dataset.exit = exit.label;
  const ranked = probabilities[chosen]
    .map((p, i) => [p, i])
    .sort((a, b) => b[0] - a[0])
    .slice(0, TOP);
  $('predictions').replaceChildren(
    ...ranked.map(([p, i]) => {
      const item = document.createElement('li');
      item.dataset.label = card.dataset.classes[i];
      item.textContent = `${card.dataset.classes[i]}: ${(p * 100).toFixed(1)}%`;
      return item;
    }),
  );
}

async function main() {
  const card = await (await fetch('model-card.json')).json();
  $('title').textContent = card.title;
  $('about').textContent =
    `${card.format} export; input ${card.preprocessing.shape.slice(1).join('x')} (${card.preprocessing.channelOrder}); classes: ${card.dataset.classes.join(', ')}.`;
  const run = await loadModel(card);
  const input = $('image');
  input.disabled = false;
  $('status').textContent = 'Ready: choose an image.';
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    try {
      $('status').textContent = 'Running…';
      const x = preprocess(
        await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }),
        card,
      );
      show(card, await run(x));
      $('status').textContent = 'Done.';
      document.body.dataset.state = 'predicted';
    } catch (error) {
      $('status').textContent = `Could not run the model on ${file.name}: ${error.message}`;
      $('status').className = 'error';
    }
  });
  document.body.dataset.state = 'ready';
}

main().catch((error) => {
  $('status').textContent = `The model did not load: ${error.message}`;
  $('status').className = 'error';
  document.body.dataset.state = 'failed';
});
