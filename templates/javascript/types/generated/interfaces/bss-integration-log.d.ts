/** @module Interface bss:integration/log@1.4.0 **/
export function write(level: Level, message: string): void;
/**
 * Since 1.1: whether a line at `level` would be kept, so a connector can skip building
 * messages nobody reads (per-record debug lines in a 10,000-record push).
 */
export function enabled(level: Level): boolean;
/**
 * # Variants
 * 
 * ## `"trace"`
 * 
 * ## `"debug"`
 * 
 * ## `"info"`
 * 
 * ## `"warn"`
 * 
 * ## `"error"`
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
