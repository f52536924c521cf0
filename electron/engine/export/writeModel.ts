/**
 * Writing an export's model file: a TensorFlow.js layers model (float32 or float16 weights) or an
 * ONNX model (float32 or int8), each verified first and re-scored from the written file.
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import type { ExportResult } from '../../../shared/api.js';
import { encodeOnnxModel } from '../onnx/proto.js';
import { onnxLatency, onnxRuntimeInfo, openOnnxSession, runOnnx } from '../onnx/runtime.js';
import { onnxRunner } from './deployment.js';
import { EXPORT_FILES, writeExportFolder, writeFileFlushed } from './folder.js';
import { tfjsRunner } from './heldOut.js';
import { finishFolder, rescore, type ExportJob } from './job.js';
import { layersFolderHandler, loadLayersModelFromFolder, type WeightPrecision } from './tfjsFiles.js';
import { buildLayersModel } from './tfjsModel.js';
import { verify } from './verify.js';

export async function writeLayersExport(job: ExportJob, precision: WeightPrecision): Promise<ExportResult> {
  const model = buildLayersModel(job.graph, job.name);
  try {
    const verification = await verify(job.net, job.graph, async (images) => {
      const outputs = [model.predict(images)].flat();
      try {
        return (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      } finally {
        tf.dispose(outputs);
      }
    });
    let deployment: ExportResult['deployment'] | undefined;
    const files = await writeExportFolder(job.destination, async (dir) => {
      await model.save(layersFolderHandler(dir, precision));
      const written = await loadLayersModelFromFolder(dir);
      let top1: number[];
      try {
        top1 = await rescore(
          job,
          tfjsRunner((x) => written.predict(x), job.graph.input.shape),
        );
      } finally {
        written.dispose();
      }
      // A float16 file is judged against the float32 model it was made from.
      const scored =
        precision === 'float16'
          ? {
              float32: await rescore(
                job,
                tfjsRunner((x) => model.predict(x), job.graph.input.shape),
              ),
              float16: top1,
            }
          : { float32: top1 };
      deployment = await finishFolder(job, dir, [EXPORT_FILES.layersModel, EXPORT_FILES.layersWeights], verification, {
        top1: scored,
      });
    });
    return { files, directory: job.destination, deployment: deployment! };
  } finally {
    model.dispose();
  }
}
export async function writeOnnxExport(job: ExportJob, int8: boolean): Promise<ExportResult> {
  const shape = job.graph.input.shape;
  const floatSession = await openOnnxSession(encodeOnnxModel(job.onnx.float32), 'the exported ONNX model');
  try {
    const verification = await verify(job.net, job.graph, async (images) =>
      runOnnx(floatSession, (await images.data()) as Float32Array, shape),
    );
    const batch1 = await onnxLatency(floatSession, shape);
    const bytes = encodeOnnxModel(int8 ? job.onnx.int8 : job.onnx.float32);
    let deployment: ExportResult['deployment'] | undefined;
    const files = await writeExportFolder(job.destination, async (dir) => {
      await writeFileFlushed(join(dir, EXPORT_FILES.onnxModel), bytes);
      // Scored from the file just written, not from the bytes in memory: what the user gets.
      const written = await openOnnxSession(join(dir, EXPORT_FILES.onnxModel));
      try {
        const top1 = await rescore(job, onnxRunner(written, shape));
        const scored = int8
          ? { float32: await rescore(job, onnxRunner(floatSession, shape)), int8: top1 }
          : { float32: top1 };
        const extra = int8 ? {} : { onnxLatency: { ...onnxRuntimeInfo(), batch1: [batch1] } };
        deployment = await finishFolder(job, dir, [EXPORT_FILES.onnxModel], verification, { top1: scored }, extra);
      } finally {
        await written.release();
      }
    });
    return { files, directory: job.destination, deployment: deployment! };
  } finally {
    await floatSession.release();
  }
}
