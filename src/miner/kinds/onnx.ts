// The onnx kind on the miner: runs a leased batch through the model (by hash) in a warm onnxruntime-web session and
// returns its outputs packed as the kind expects (src/work/onnx/onnx.ts).
import type * as Ort from 'onnxruntime-web';
import * as v from 'valibot';
import { CodedError } from '../../protocol/errors.ts';
import { parseNormalize, normalizeU8 } from '../../work/onnx/normalize.ts';
import { packResult } from '../../work/onnx/onnx.ts';
import { UnitCancelledError } from '../cancelled.ts';
import { onnxRuntime, sessionFor } from '../onnx/sessions.ts';
import type { Execution, MinerKind } from './kind.ts';

const Names = v.pipe(v.string(), v.parseJson(), v.array(v.string()));

export const onnxMinerKind: MinerKind = {
  name: 'onnx',

  async execute(payload, _engines, signal): Promise<Execution> {
    const inputNames = v.safeParse(Names, payload.params.inputNames);
    const outputNames = v.safeParse(Names, payload.params.outputNames);
    if (!inputNames.success || !outputNames.success) throw new CodedError('bad-params', 'an onnx lease names its inputs and outputs as JSON lists');
    const model = String(payload.params.model);
    const { ort } = await onnxRuntime();
    const feeds: Record<string, Ort.Tensor> = {};
    inputNames.output.forEach((name, i) => {
      const tensor = payload.operands[`i${i}`];
      if (tensor?.dtype === 'u8') {
        // Compact input (pixels): normalised here, exactly as the coordinator's re-run does.
        const normalize = parseNormalize(payload.params.normalize);
        if (!normalize.ok) throw new CodedError('bad-params', `a uint8 operand i${i} (${name}) comes without a usable normalisation: ${normalize.error.message}`);
        if (normalize.value.scale.length !== tensor.shape[1]) throw new CodedError('shape-mismatch', `operand i${i} (${name}) has ${tensor.shape[1]} channels, its normalisation ${normalize.value.scale.length}`);
        feeds[name] = new ort.Tensor('float32', normalizeU8(new Uint8Array(tensor.data), tensor.shape, normalize.value), tensor.shape);
        return;
      }
      if (!tensor || tensor.dtype !== 'f32') throw new CodedError('shape-mismatch', `an onnx lease lacks its f32 or u8 operand i${i} (${name})`);
      feeds[name] = new ort.Tensor('float32', new Float32Array(tensor.data), tensor.shape);
    });
    // The first unit of a model also measures the engines on its inputs (sessions.ts).
    const { session, engine } = await sessionFor(model, feeds);
    if (signal.aborted) throw new UnitCancelledError();
    const started = performance.now();
    const results = await session.run(feeds);
    const seconds = Math.max(performance.now() - started, 0.001) / 1000;
    const outputs = outputNames.output.map((name) => {
      const out = results[name];
      if (!out || !(out.data instanceof Float32Array)) throw new CodedError('engine-failed', `the model gave no float32 output ${name}`);
      const values = new Float32Array(out.data);
      out.dispose();
      return values;
    });
    const packed = packResult(outputs);
    const data = Uint8Array.from(packed.data).buffer;
    return { output: { dtype: 'f32', shape: packed.shape, data }, gpuSeconds: seconds, submitSeconds: seconds, dispatches: 1, ranOn: { engine, model } };
  },
};
