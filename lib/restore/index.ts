/** Guided restoration (paper Sec. 3.3), imported in notebooks as `tdr.restore.…`. */
export * from './aggregation';
export * from './guided';
export * from './layers';
export * from './nafnet';
export * from './restormer';
export * from './promptir';
export * from './data';
export * from './source';
export * from './train';
export * from './eval';
export * from './tiled';
export * from './inspect';
export * from './bench';
export * from './config';
/** Classical references without learned weights (dark channel prior, non-local means): `tdr.restore.classical.…`. */
export * as classical from './classical';
