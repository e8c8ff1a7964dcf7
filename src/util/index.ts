/** Small helpers every layer may use (no I/O). */
export { Limiter } from './limiter.js';
