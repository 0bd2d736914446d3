// Operands kept on the GPU while units use them: device buffers by the sha256 of their bytes, least recently used
// dropped past a byte budget, never while a unit in flight binds them. A unit whose B block is resident uploads only A.

/** Bytes written to a device buffer: f32 values, or f16 as their IEEE half bits. */
export type OperandData = Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>;

interface Entry {
  buffer: GPUBuffer;
  pins: number;
}

export class ResidentOperands {
  private readonly entries = new Map<string, Entry>();
  private residentBytes = 0;
  /** Units that found an operand resident, and that uploaded one: what the figures and tests read. */
  hits = 0;
  uploads = 0;

  constructor(
    private readonly device: GPUDevice,
    /** 0 keeps nothing resident past its unit. */
    public budgetBytes: number,
  ) {}

  /** The buffer holding these bytes, uploaded when not resident; pinned until release(sha256). */
  acquire(sha256: string, data: OperandData): GPUBuffer {
    const entry = this.entries.get(sha256);
    if (entry) {
      this.entries.delete(sha256);
      this.entries.set(sha256, entry);
      entry.pins++;
      this.hits++;
      return entry.buffer;
    }
    const buffer = this.device.createBuffer({
      label: `operand ${sha256.slice(0, 12)}`,
      size: Math.max(16, Math.ceil(data.byteLength / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    writeOperand(this.device, buffer, data);
    this.entries.set(sha256, { buffer, pins: 1 });
    this.residentBytes += buffer.size;
    this.uploads++;
    this.evict();
    return buffer;
  }

  release(sha256: string): void {
    const entry = this.entries.get(sha256);
    if (entry) entry.pins--;
    this.evict();
  }

  destroy(): void {
    for (const entry of this.entries.values()) entry.buffer.destroy();
    this.entries.clear();
    this.residentBytes = 0;
  }

  private evict(): void {
    for (const [sha256, entry] of this.entries) {
      if (this.residentBytes <= this.budgetBytes) break;
      if (entry.pins > 0) continue;
      entry.buffer.destroy();
      this.entries.delete(sha256);
      this.residentBytes -= entry.buffer.size;
    }
  }
}

/** writeBuffer takes whole 4-byte words: an odd count of halves goes as its whole words, then its last half padded. */
export function writeOperand(device: GPUDevice, buffer: GPUBuffer, data: OperandData): void {
  const whole = data.byteLength - (data.byteLength % 4);
  device.queue.writeBuffer(buffer, 0, data, 0, whole / data.BYTES_PER_ELEMENT);
  if (whole < data.byteLength) device.queue.writeBuffer(buffer, whole, new Uint16Array([data[data.length - 1], 0]));
}
