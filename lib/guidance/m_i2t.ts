/**
 * M_i2t, the image-to-text mapper of Eq. (2): E_txt = M_i2t(τi(X)), E_txt ∈ R^{N×D}, and ELITE's
 * trainable copies of the UNet's cross-attention key/value projections that train with it.
 *
 * Paper: Lin et al., CVPR 2024, Sec. 3.2 ("Image-to-Text Mapping"), following ELITE (Wei et al. 2023).
 * The mapper itself (`ImageToTextMapper`, `mapperFeatures`) is a shared building block in
 * lib/models/word_mapper.ts: the text-to-image model here trains one jointly with its UNet (stage 0),
 * and M_i2t starts from it. The official code's `Mapper` (scripts/train/main_train_i2t_mapping.py) is
 * described there. The N words replace the placeholder of "a photo of a S" before the frozen text
 * encoder; trainable copies of every UNet cross-attention's key/value projections
 * (`to_k_global`/`to_v_global`, initialised from the originals) are used instead of the originals
 * (`KVCopies`).
 */
import { Params } from '../models/params';
import { Linear } from '../models/nn';
import { UNet } from '../models/unet';
import { Rng } from '../util/rng';
export { LEAKY_SLOPE, WordMlp, ImageToTextMapper, mapperFeatures } from '../models/word_mapper';

/**
 * ELITE's `to_k_global`/`to_v_global`: a trainable copy of every UNet cross-attention's key and value
 * projections, initialised from the originals, passed to the UNet as `kvOverride`.
 * Parameters: `${prefix}.<attention name>.k.w` / `.v.w` (no bias, as the originals).
 */
export class KVCopies {
  readonly map = new Map<string, { k: Linear; v: Linear }>();

  constructor(p: Params, readonly prefix: string, unet: UNet) {
    const rng = new Rng(0); // unused: zero-init then copied
    for (const { name, k, v } of unet.crossAttentionKV()) {
      const kc = new Linear(p, `${prefix}.${name}.k`, k.din, k.dout, rng, { bias: false, zeroInit: true });
      const vc = new Linear(p, `${prefix}.${name}.v`, v.din, v.dout, rng, { bias: false, zeroInit: true });
      kc.w.assign(k.w);
      vc.w.assign(v.w);
      this.map.set(name, { k: kc, v: vc });
    }
  }
}
