/** @module Interface bss:integration/settings@1.4.0 **/
/**
 * The value of a non-secret server variable (its default when unset); none for unknown keys,
 * unset values and secrets.
 */
export function get(key: string): string | undefined;
/**
 * Every non-secret server variable that has a value, as (key, value).
 */
export function all(): Array<[string, string]>;
/**
 * The remote value a BSS value maps to in lookup `key`.
 */
export function lookup(key: string, bssValue: string): string | undefined;
/**
 * The BSS value a remote value maps back to in lookup `key` (the pull default when several map
 * to it, else the first mapped); none when unmapped.
 */
export function reverseLookup(key: string, remoteValue: string): string | undefined;
/**
 * The whole lookup table `key`.
 */
export function lookupTable(key: string): Array<LookupEntry>;
/**
 * One row of a lookup table.
 */
export interface LookupEntry {
  bssValue: string,
  remoteValue: string,
  /**
   * On pull, the BSS value chosen when several map to the same remote value.
   */
  pullDefault: boolean,
}
