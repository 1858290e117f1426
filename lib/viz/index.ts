export * from './grid';
export * from './table';
export * from './plotly';
export * from './live';
export * from './draw';
