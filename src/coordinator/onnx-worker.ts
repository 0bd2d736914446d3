// The thread that runs onnxruntime-node for the coordinator (src/coordinator/onnx-thread.ts starts it): its
// InferenceSession.run and create are synchronous native calls, which on the main thread stop the event loop for
// their whole length (measured: a 0.5 GFLOP run held it 48 ms), long enough on a busy machine for miners' links to
// count the coordinator dead. Here they block only this thread. It knows onnxruntime, not the product: what to run
// and what the answers mean stay in model-store.ts.
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type * as OrtNode from 'onnxruntime-node';
import type { TensorInfo } from '../work/onnx/model.ts';
import { Carried, type OnnxReply, type OnnxRequest, type OnnxTensors } from './onnx-thread.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;
const port = parentPort;
if (!port) throw new Error('onnx-worker.ts runs as a worker thread (see onnx-thread.ts)');

/** Sessions for audits' re-runs, by model hash: made once, kept while the coordinator runs. */
const sessions = new Map<string, Promise<OrtNode.InferenceSession>>();

port.on('message', (request: OnnxRequest) => {
  void answer(request).then(
    (reply) => {
      const carried = new Carried();
      port.postMessage(reply.ok && reply.op === 'run' ? { ...reply, outputs: carried.tensors(reply.outputs) } : reply, carried.transfer);
    },
    (err: unknown) => port.postMessage({ id: request.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies OnnxReply),
  );
});

async function answer(request: OnnxRequest): Promise<OnnxReply> {
  switch (request.op) {
    case 'inspect': {
      const session = await ort.InferenceSession.create(request.bytes);
      try {
        return { id: request.id, ok: true, op: 'inspect', inputs: session.inputMetadata.map(tensorInfo), outputs: session.outputMetadata.map(tensorInfo) };
      } finally {
        await session.release();
      }
    }
    case 'profile': {
      const session = await ort.InferenceSession.create(request.bytes, {
        enableProfiling: true, profileFilePrefix: request.profilePrefix, graphOptimizationLevel: 'disabled', executionMode: 'sequential',
      });
      try {
        const outputs = await session.run(feeds(request.inputs));
        session.endProfiling();
        return { id: request.id, ok: true, op: 'run', outputs: tensors(outputs) };
      } finally {
        await session.release();
      }
    }
    case 'run': {
      let session = sessions.get(request.sha256);
      if (!session) {
        session = typeof request.model === 'string' ? ort.InferenceSession.create(request.model) : ort.InferenceSession.create(request.model);
        sessions.set(request.sha256, session);
        session.catch(() => sessions.delete(request.sha256));
      }
      return { id: request.id, ok: true, op: 'run', outputs: tensors(await (await session).run(feeds(request.inputs))) };
    }
  }
}

function feeds(inputs: OnnxTensors): Record<string, OrtNode.Tensor> {
  const out: Record<string, OrtNode.Tensor> = {};
  for (const [name, { shape, data }] of inputs) out[name] = new ort.Tensor('float32', data, shape);
  return out;
}

function tensors(outputs: OrtNode.InferenceSession.ReturnType): OnnxTensors {
  return Object.entries(outputs).map(([name, tensor]) => {
    if (!(tensor.data instanceof Float32Array)) throw new Error(`output ${name} is ${tensor.type}, not float32`);
    return [name, { shape: tensor.dims.map(Number), data: tensor.data }];
  });
}

function tensorInfo(meta: OrtNode.InferenceSession.ValueMetadata): TensorInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: 'non-tensor', shape: [] };
  return { name: meta.name, dtype: meta.type, shape: meta.shape.map((d) => (typeof d === 'number' ? d : String(d))) };
}
