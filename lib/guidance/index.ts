/**
 * Degradation-free guidance (paper Sec. 3.2): M_i2t, M_clean, the guidance model and its checkpoint,
 * generation, analysis, stages 1–2 and their presets. `lib/index.ts` can re-export it whole:
 *   export * from './guidance';
 */
export * from './m_i2t';
export * from './m_clean';
export * from './model';
export * from './pipeline';
export * from './analysis';
export * from './eval';
export * from './haze_probe';
export * from './config';
export * from './train_i2t';
export * from './train_clean';
