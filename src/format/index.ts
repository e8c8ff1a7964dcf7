/** Public surface of the pure format layer. */
export * from './checksum.js';
export * from './gvariant.js';
export * from './objects.js';
export { KeyFile } from './keyfile.js';
export * from './tar.js';
export * from './delta.js';
export * from './summary.js';
