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
