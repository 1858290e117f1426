/**
 * Frozen image encoder τi: the ImageNet-pretrained MobileNetV2 that ships inside the npm package
 * `nsfwjs@4.4.0` (`dist/models/mobilenet_v2/`), loaded from the installed package's own files with
 * no network, cut before its classifier head.
 *
 * Paper / reference: TextualDegRemoval uses CLIP ViT-H/14 (`CLIPVisionModel`, width 1280, 224 px,
 * last_hidden_state = 1 CLS + 256 patch tokens; github.com/mrluin/TextualDegRemoval/issues/11). No pretrained CLIP is
 * reachable here (docs/notation.md, deviations), so τi is this MobileNetV2 instead:
 *   - `global` [B,1280] = global average of `out_relu` (7×7×1280)   ↔ CLIP's CLS token
 *   - `tokens` [B,49,1280] = the 7×7 cells of `out_relu`, row-major   ↔ CLIP's patch tokens
 *   - cut `block10` instead: `block_10_project_BN` (14×14×96) → global [B,96], tokens [B,196,96].
 *
 * What the weights are. The package's model is GantMan/nsfw_model's Keras 2.2.4 MobileNetV2 (α=1.0,
 * 224 px, `weights='imagenet'`) with a 5-class NSFW head, then fine-tuned from `block_11_expand`
 * onward (its model.json marks layers 1–98, up to `block_10_project_BN`, `trainable: false`). So
 * layers up to block_10 are the untouched ImageNet weights; blocks 11–16, `Conv_1` and `out_relu`
 * were fine-tuned (SGD, small lr) on NSFW/neutral/drawing photos. Weights are stored uint8-quantised
 * (266 tensors, 2.6 MB); tfjs dequantises them on load.
 *
 * Preprocessing (`preprocess`), fixed and documented:
 *   1. input RGB in [0,1] (`RGBImage` or a [B,H,W,3] tensor in [0,1]), any size;
 *   2. optional square centre crop (`fit: 'centerCrop'`; default `'stretch'` squashes the whole image,
 *      as nsfwjs does);
 *   3. bilinear resize to 224×224 with `alignCorners = true` (exactly nsfwjs's `infer`; not
 *      anti-aliased, so a large downscale subsamples rather than averages — noise stays visible);
 *   4. value range: `'unit'` = [0,1] (default; what nsfwjs feeds: `img / 255`, and what the
 *      fine-tuning used: Keras `ImageDataGenerator(rescale=1/255)`), or `'symmetric'` = [-1,1]
 *      (Keras `mobilenet_v2.preprocess_input`, what the ImageNet pretraining used). No per-channel
 *      mean/std (unlike CLIP). The default was chosen by the sanity test in
 *      test/models/image_encoder.test.ts (see the numbers there).
 *
 * Frozen: the weights live in the tfjs layers model, never in a `Params` store; the model is set
 * `trainable = false` so `tf.variableGrads()` without a list does not see them. The loaded model is
 * cached per process (per backend); `disposeImageEncoder()` frees it.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { RGBImage } from '../data/image';

/** Spatial input size MobileNetV2 was trained at. */
export const IMAGE_SIZE = 224;

/** Where to cut the network. */
export type EncoderCut = 'out_relu' | 'block10';

/** Layer name and feature size for each cut. */
export const CUTS: Record<EncoderCut, { layer: string; grid: number; dim: number }> = {
  out_relu: { layer: 'out_relu', grid: 7, dim: 1280 },
  block10: { layer: 'block_10_project_BN', grid: 14, dim: 96 },
};

/** Value range fed to the network (see the header). */
export type InputRange = 'unit' | 'symmetric';

export interface EncodeOptions {
  /** network cut; default 'out_relu' (global 1280, tokens 7×7) */
  cut?: EncoderCut;
  /** 'unit' = [0,1] (default, as nsfwjs), 'symmetric' = [-1,1] (Keras ImageNet preprocessing) */
  range?: InputRange;
  /** 'stretch' (default) resizes the whole image to 224×224; 'centerCrop' first crops the largest centred square */
  fit?: 'stretch' | 'centerCrop';
}

export interface ImageFeatures {
  /** [B,dim] global average of the cut's feature map ("CLS") */
  global: tf.Tensor2D;
  /** [B,grid²,dim] the feature map's cells, row-major ("patch tokens") */
  tokens: tf.Tensor3D;
}

export const DEFAULT_RANGE: InputRange = 'unit';

// ---------------------------------------------------------------------------------------------
// Loading (offline, from the installed package)

/** Folder of the package's MobileNetV2 (model.min.js + group1-shard1of1.min.js). */
export function nsfwjsModelDir(): string {
  // 'nsfwjs' resolves to <root>/dist/cjs/index.js; its exports map hides the model files, so go by path.
  const root = path.resolve(path.dirname(require.resolve('nsfwjs')), '..', '..');
  return path.join(root, 'dist', 'models', 'mobilenet_v2');
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
}

/** Require a CommonJS module by absolute path and drop it from the require cache (the shard is a 3.5 MB string). */
function requireOnce(file: string): unknown {
  const resolved = require.resolve(file);
  try {
    return require(resolved);
  } finally {
    delete require.cache[resolved];
  }
}

/**
 * An IOHandler that reads the package's model.json and base64 weight shard(s) from disk — the same
 * files nsfwjs's own CommonJS loader (`dist/cjs/model_imports/mobilenet_v2.js`) requires.
 */
export function localModelHandler(dir: string = nsfwjsModelDir()): tf.io.IOHandler {
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      const json = requireOnce(path.join(dir, 'model.min.js')) as ModelJson;
      if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new Error(`image encoder: ${dir}/model.min.js is not a tfjs layers model.json`);
      }
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        for (const p of group.paths) {
          const b64 = requireOnce(path.join(dir, `${p}.min.js`));
          if (typeof b64 !== 'string') throw new Error(`image encoder: ${dir}/${p}.min.js does not export a base64 string`);
          buffers.push(new Uint8Array(Buffer.from(b64, 'base64')));
        }
        weightSpecs.push(...group.weights);
      }
      const total = buffers.reduce((a, b) => a + b.length, 0);
      const weightData = new Uint8Array(total);
      let off = 0;
      for (const b of buffers) {
        weightData.set(b, off);
        off += b.length;
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? undefined,
        weightSpecs,
        weightData: weightData.buffer,
      };
    },
  };
}

interface Loaded {
  backend: string;
  full: tf.LayersModel;
  cuts: Map<EncoderCut, tf.LayersModel>;
  loadMs: number;
}

let cache: Promise<Loaded> | undefined;

/**
 * Load (once per process and backend) the package's MobileNetV2, frozen.
 * @returns the full model (with the NSFW head) and the load time of the first call
 */
export async function loadImageEncoder(): Promise<{ model: tf.LayersModel; loadMs: number }> {
  const backend = tf.getBackend();
  if (cache) {
    const c = await cache;
    if (c.backend === backend) return { model: c.full, loadMs: c.loadMs };
    disposeImageEncoder(); // weights live on the old backend's memory; reload
  }
  cache = (async () => {
    const t0 = Date.now();
    const full = await tf.loadLayersModel(localModelHandler());
    full.trainable = false;
    return { backend, full, cuts: new Map<EncoderCut, tf.LayersModel>(), loadMs: Date.now() - t0 };
  })();
  try {
    const c = await cache;
    return { model: c.full, loadMs: c.loadMs };
  } catch (e) {
    cache = undefined;
    throw e;
  }
}

/** The cached sub-model from the input to a cut's layer. */
async function cutModel(cut: EncoderCut): Promise<tf.LayersModel> {
  await loadImageEncoder();
  const c = await cache!;
  let m = c.cuts.get(cut);
  if (!m) {
    const layer = c.full.getLayer(CUTS[cut].layer);
    m = tf.model({ inputs: c.full.inputs, outputs: layer.output as tf.SymbolicTensor });
    m.trainable = false;
    c.cuts.set(cut, m);
  }
  return m;
}

/** Free the cached model (its weights). The next encode reloads it. */
export function disposeImageEncoder(): void {
  const c = cache;
  cache = undefined;
  if (c) void c.then((l) => l.full.dispose(), () => undefined);
}

// ---------------------------------------------------------------------------------------------
// Preprocessing and encoding

/** Stack RGBImages into a [B,H,W,3] tensor; all must have the same size (resize first otherwise). */
export function imagesToTensor(imgs: RGBImage[]): tf.Tensor4D {
  if (imgs.length === 0) throw new Error('imagesToTensor: imgs is empty');
  const { height: h, width: w } = imgs[0];
  const data = new Float32Array(imgs.length * h * w * 3);
  imgs.forEach((im, i) => {
    if (im.height !== h || im.width !== w) throw new Error(`imagesToTensor: image ${i} is ${im.height}x${im.width}, image 0 is ${h}x${w}; pass one size per call`);
    data.set(im.data, i * h * w * 3);
  });
  return tf.tensor4d(data, [imgs.length, h, w, 3]);
}

/**
 * τi preprocessing (see the header): [B,H,W,3] in [0,1] → [B,224,224,3] in [0,1] ('unit') or [-1,1]
 * ('symmetric'). Bilinear, alignCorners = true. Synchronous; call inside tf.tidy.
 */
export function preprocess(x: tf.Tensor4D, opts: Pick<EncodeOptions, 'range' | 'fit'> = {}): tf.Tensor4D {
  if (x.rank !== 4 || x.shape[3] !== 3) throw new Error(`preprocess: x must be [B,H,W,3] RGB, got [${x.shape}]`);
  const range = opts.range ?? DEFAULT_RANGE;
  let y = x.toFloat();
  if ((opts.fit ?? 'stretch') === 'centerCrop') {
    const [, h, w] = x.shape;
    const s = Math.min(h, w);
    y = tf.slice(y, [0, Math.floor((h - s) / 2), Math.floor((w - s) / 2), 0], [-1, s, s, 3]);
  }
  if (y.shape[1] !== IMAGE_SIZE || y.shape[2] !== IMAGE_SIZE) y = tf.image.resizeBilinear(y, [IMAGE_SIZE, IMAGE_SIZE], true);
  return (range === 'symmetric' ? tf.sub(tf.mul(y, 2), 1) : y) as tf.Tensor4D;
}

/**
 * τi(X): image features for M_i2t.
 * @param imgs RGBImage[] (RGB in [0,1], sizes may differ) or a [B,H,W,3] float tensor in [0,1] (not disposed)
 * @returns global [B,dim] and tokens [B,grid²,dim] (dim 1280 and 7×7 for 'out_relu'); caller disposes
 */
export async function encodeImages(imgs: RGBImage[] | tf.Tensor4D, opts: EncodeOptions = {}): Promise<ImageFeatures> {
  const cut = opts.cut ?? 'out_relu';
  if (!(cut in CUTS)) throw new Error(`encodeImages: unknown cut '${cut}', expected one of ${Object.keys(CUTS).join(', ')}`);
  const model = await cutModel(cut);
  const { grid, dim } = CUTS[cut];
  return tf.tidy(() => {
    let x: tf.Tensor4D;
    if (Array.isArray(imgs)) {
      if (imgs.length === 0) throw new Error('encodeImages: imgs is empty');
      // images may differ in size: preprocess each to 224×224, then batch
      x = tf.concat(imgs.map((im) => preprocess(imagesToTensor([im]), opts)), 0);
    } else {
      if (imgs.rank !== 4 || imgs.shape[3] !== 3) throw new Error(`encodeImages: images must be [B,H,W,3], got [${imgs.shape}]`);
      x = preprocess(imgs, opts);
    }
    const fmap = model.predict(x) as tf.Tensor4D; // [B,grid,grid,dim]
    const b = fmap.shape[0];
    const tokens = fmap.reshape([b, grid * grid, dim]) as tf.Tensor3D; // [B,grid²,dim]
    const global = tf.mean(tokens, 1) as tf.Tensor2D; // [B,dim]
    return { global, tokens };
  });
}

/**
 * The global feature of each image, L2-normalised (cosine similarity = dot product): what content
 * retrieval ranks by (lib/t2i/check.ts, lib/guidance/eval.ts).
 */
export async function unitGlobalFeatures(imgs: RGBImage[], opts: EncodeOptions = {}): Promise<Float32Array[]> {
  const f = await encodeImages(imgs, opts);
  const g = tf.tidy(() => tf.div(f.global, tf.norm(f.global, 'euclidean', 1, true)));
  const data = g.dataSync() as Float32Array;
  const dim = g.shape[1] as number;
  tf.dispose([f.global, f.tokens, g]);
  return imgs.map((_, i) => data.slice(i * dim, (i + 1) * dim));
}
