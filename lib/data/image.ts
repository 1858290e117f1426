/**
 * The project's in-memory image: float32 RGB, HWC layout, values in [0, 1].
 *
 * Pure typed arrays (not tensors) so that degradations and metrics are backend-independent,
 * byte-reproducible and free of tensor-memory management. `toTensor` / `fromTensor` convert to
 * and from tfjs `[H,W,3]` tensors for the models.
 */
import { UserError } from '../util/errors';

export interface RGBImage {
  readonly height: number;
  readonly width: number;
  /** length height*width*3, row-major HWC, RGB in [0, 1] (degradations may leave [0,1] in float mode). */
  readonly data: Float32Array;
}

/** Make an image, validating that the buffer matches the shape. */
export function makeImage(height: number, width: number, data?: Float32Array): RGBImage {
  if (!(Number.isInteger(height) && height > 0 && Number.isInteger(width) && width > 0)) {
    throw new Error(`makeImage: height and width must be positive integers, got ${height}x${width}`);
  }
  const n = height * width * 3;
  if (data && data.length !== n) {
    throw new Error(`makeImage: data has ${data.length} values, expected ${height}*${width}*3 = ${n}`);
  }
  return { height, width, data: data ?? new Float32Array(n) };
}

/** A copy with every value clipped to [0, 1]. */
export function clip01(img: RGBImage): RGBImage {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = img.data[i];
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return { height: img.height, width: img.width, data: out };
}

/** A model output with NaN or ±Inf values (corrupt or diverged weights): refused, never saved as an image. */
export class NonFiniteError extends UserError {
  override name = 'NonFiniteError';
}

/** Throw NonFiniteError `<what> produced non-finite values …` when any value is NaN or ±Inf. */
export function assertFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new NonFiniteError(`${what} produced non-finite values (NaN or Inf): its checkpoint is corrupt or its training diverged`);
  }
}
