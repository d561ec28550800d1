'use strict';
/*
 * The yolo benchmark's anchor: the CenterNet graph model that scripts/yolo.js uses, called
 * directly through TensorFlow.js (wasm backend), with no request parsing, NMS or output
 * building. Loads the model, runs one untimed warm-up frame, then times N inferences on
 * the frames of a raw rgb24 file (512x512 each, taken in turn and wrapping around when the
 * file holds fewer than N), each with its read, conversion to float and output download.
 *
 *   NODE_PATH=.node/node_modules node tools/yolobench/direct.js MODEL_JSON RAW_FILE N
 *   prints {"frames": N, "seconds": s, "fps": f}
 */
const fs = require('fs');
const path = require('path');

const SIDE = 512;                         // the model's input is [1, 512, 512, 3]
const FRAME_BYTES = SIDE * SIDE * 3;
const INPUT = 'tower_0/images';
const OUTPUT = 'tower_0/detections';

for (const name of ['log', 'info', 'warn', 'debug']) console[name] = () => {};

async function main([modelPath, rawPath, count]) {
  const n = Number(count);
  if (!modelPath || !rawPath || !Number.isInteger(n) || n < 1) {
    throw new Error('usage: node direct.js MODEL_JSON RAW_FILE N');
  }
  const tf = require('@tensorflow/tfjs-core');
  const { loadGraphModel } = require('@tensorflow/tfjs-converter');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not start');

  // model.json and its weight files, from disk.
  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const model = await loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    signature: json.signature,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: new Uint8Array(Buffer.concat(json.weightsManifest.flatMap((g) => g.paths)
      .map((p) => fs.readFileSync(path.join(path.dirname(modelPath), p))))).buffer,
  }));

  const frames = Math.floor(fs.statSync(rawPath).size / FRAME_BYTES);
  if (frames < 1) throw new Error(`${rawPath} holds no ${SIDE}x${SIDE} rgb24 frame`);
  const fd = fs.openSync(rawPath, 'r');
  const bytes = Buffer.alloc(FRAME_BYTES);
  const pixels = new Float32Array(FRAME_BYTES);
  const infer = async (i) => {
    fs.readSync(fd, bytes, 0, FRAME_BYTES, (i % frames) * FRAME_BYTES);
    for (let p = 0; p < FRAME_BYTES; p++) pixels[p] = bytes[p];
    const x = tf.tensor4d(pixels, [1, SIDE, SIDE, 3], 'float32');
    const out = model.execute({ [INPUT]: x }, OUTPUT);
    await out.data();
    tf.dispose([x, out]);
  };

  await infer(0);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await infer(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  fs.closeSync(fd);
  return { frames: n, seconds: Number(seconds.toFixed(3)), fps: Number((n / seconds).toFixed(2)) };
}

main(process.argv.slice(2)).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err) => {
    process.stderr.write(`direct: ${String((err && err.message) || err).split('\n')[0]}\n`);
    process.exitCode = 1;
  },
);
