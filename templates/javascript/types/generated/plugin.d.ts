// world bss:integration/plugin@1.4.0
export type * as BssIntegrationHttp140 from './interfaces/bss-integration-http.js'; // import bss:integration/http@1.4.0
export type * as BssIntegrationLog140 from './interfaces/bss-integration-log.js'; // import bss:integration/log@1.4.0
export type * as BssIntegrationSettings140 from './interfaces/bss-integration-settings.js'; // import bss:integration/settings@1.4.0
export type * as BssIntegrationTypes140 from './interfaces/bss-integration-types.js'; // import bss:integration/types@1.4.0
export * as connector from './interfaces/bss-integration-connector.js'; // export bss:integration/connector@1.4.0
