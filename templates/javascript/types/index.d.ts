// The whole contract (bss:integration@1.4.0) as JavaScript sees it through ComponentizeJS.
// `connector`: what the module must export (`export const connector = defineConnector({...})`).
export type * as Types from './generated/interfaces/bss-integration-types.js';
export type * as Connector from './generated/interfaces/bss-integration-connector.js';
export type * as Http from './generated/interfaces/bss-integration-http.js';
export type * as Settings from './generated/interfaces/bss-integration-settings.js';
export type * as Log from './generated/interfaces/bss-integration-log.js';

import type * as C from './generated/interfaces/bss-integration-connector.js';

/**
 * The `connector` export as ComponentizeJS calls it. Every function but `manifest` returns the
 * `ok` value of its `result` and throws the `err` value (`{ tag, val }`), which the SDK's
 * `defineConnector` does for you. `list<result<..>>` items are `{ tag: 'ok' | 'err', val }`.
 */
export interface ConnectorExport {
  manifest: typeof C.manifest;
  activate: typeof C.activate;
  lookupChoices: typeof C.lookupChoices;
  push: typeof C.push;
  pull: typeof C.pull;
  fetch: typeof C.fetch;
  subscribe: typeof C.subscribe;
  remove: typeof C.remove;
}
