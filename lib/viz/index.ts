export * from './grid';
export * from './table';
export * from './plotly';
