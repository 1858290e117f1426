/**
 * tdr — the library behind the notebooks and the `tdr` CLI. Notebooks import it by the package name:
 *   import { readImage, degrade, computeMetrics, htmlTable } from "tdr";
 */
export const VERSION: string = require('../../package.json').version;
export * from './util/rng';
export * from './util/fsx';
export * from './data/image';
export * from './data/io';
export * from './data/corpus';
export * from './data/degrade';
export * from './eval/metrics';
export * from './eval/sweep';
export * from './eval/report';
export * from './viz';
export * from './backend';
export * from './data/captions';
export * from './data/patches';
export * from './eval/stats';
export * from './eval/t2i_eval';
export * from './config/presets';
export * from './config/paths';
export * from './models/params';
export * from './models/autoencoder';
export * from './models/unet';
export * from './models/ddim';
export * from './models/diffusion';
export * from './models/t2i';
export { TextEncoder, TextEncoderConfigSchema } from './models/text_encoder';
export { Vocab, buildVocab, PROMPT_TEMPLATE, PLACEHOLDER_WORD } from './models/tokenizer';
export * as tokenizer from './models/tokenizer';
export * as imageEncoder from './models/image_encoder';
export * from './train/loop';
export * from './train/checkpoint';
export * from './train/stages/autoencoder';
export * from './train/stages/t2i';
export * from './guidance';
export * from './guidance/source';
