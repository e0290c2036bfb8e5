// @ts-check
// A small but real bss:integration@1.4.0 connector in JavaScript: BSS accounts <-> ConnectWise
// companies, against ConnectWise Manage or the local sandbox (tests/cw-sandbox).
//
// Build: ./build.sh (ComponentizeJS; see README.md). The connector's name is NAME below.
//
// What it does (ConnectWise's REST API under {url}/v4_6_release/apis/3.0):
// - activate: reads the settings (every problem in one `invalid-settings`), checks the site and
//   company id (GET /login/companyinfo/{company}), then the keys (one authenticated GET).
// - lookup-choices "company-types": every company type, following the Link header's pages.
// - push accounts: create (POST company/companies) or update (GET, then a JSON Patch of only what
//   the BSS changed since its last push: three-way, conflicts per `options.conflicts`). The BSS id
//   is the company `identifier` (unique in ConnectWise), the account code its `accountNumber`; a
//   create retried after an unknown outcome (`maybe-created`) finds the company by that pair
//   instead of duplicating it.
// - pull accounts: forward-only pages of companies changed since the cursor.
// - fetch: one company by id (none when ConnectWise has none, or holds it as deleted).
// - subscribe, remove: `unsupported` (the host then relies on schedules).

import {
  defineConnector,
  errors,
  eachItem,
  Http,
  readSettings,
  lookups,
  log,
  encode,
  query,
  queryParam,
  isTimestamp,
} from './sdk.js';

/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').ConnectorManifest} ConnectorManifest */
/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').PushItem} PushItem */
/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').PushOptions} PushOptions */
/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').Pushed} Pushed */
/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').PullPage} PullPage */
/** @typedef {import('./types/generated/interfaces/bss-integration-connector.js').OverwrittenValue} OverwrittenValue */
/** @typedef {import('./types/generated/interfaces/bss-integration-types.js').Account} Account */
/** @typedef {import('./types/generated/interfaces/bss-integration-types.js').Record} BssRecord */
/** @typedef {import('./types/generated/interfaces/bss-integration-types.js').PulledRecord} PulledRecord */
/** @typedef {import('./types/generated/interfaces/bss-integration-types.js').Entity} Entity */

// The one place the connector's name is written (`connectors new NAME` replaces it).
const NAME = 'template-connector';
const VERSION = '0.1.0';

const API = 'v4_6_release/apis/3.0';
/** The ConnectWise API model version pinned in every request. */
const ACCEPT = 'application/vnd.connectwise.com+json; version=2026.4';
const COMPANIES = 'company/companies';
const PAGE_SIZE = 1000;
const ACCOUNT_TYPE = 'account-type';

/** @type {ConnectorManifest['serverVariables']} */
const VARIABLES = [
  variable('url', 'ConnectWise URL', 'url', true,
    'The ConnectWise site the connector talks to.',
    'The site of your ConnectWise Manage, e.g. api-na.myconnectwise.net (https is assumed).'),
  variable('company-id', 'Company ID', 'text', true,
    'Identifies your company to ConnectWise; part of the API user name.',
    'The company id you log in with, e.g. mycompany.'),
  variable('public-key', 'Public key', 'text', true,
    "The API member's public key; part of the API user name.",
    'From System > Members > API Members > API Keys.'),
  variable('private-key', 'Private key', 'secret', true,
    "The API member's private key: the API password.",
    'Shown once when the API key is created. Stored encrypted; never shown again.'),
  variable('client-id', 'Client Id', 'text', true,
    'Identifies this integration to ConnectWise (the clientId header on every call).',
    'A GUID from developer.connectwise.com.'),
];

/**
 * @param {string} key @param {string} label
 * @param {'text'|'secret'|'url'|'integer'|'choice'} kind @param {boolean} required
 * @param {string} purpose @param {string} description
 */
function variable(key, label, kind, required, purpose, description) {
  return {
    key, label, purpose, description, kind, required,
    choices: [], defaultValue: undefined, choicesFrom: undefined, requiredWhen: [],
  };
}

/** @returns {ConnectorManifest} */
function manifest() {
  return {
    name: NAME,
    version: VERSION,
    description: 'ConnectWise Manage companies <-> BSS accounts (a template connector written in JavaScript).',
    serverVariables: VARIABLES,
    syncOptions: [
      { entity: 'account', direction: 'push', operations: { create: true, update: true, delete: false } },
      { entity: 'account', direction: 'pull', operations: { create: true, update: true, delete: false } },
    ],
    lookups: [
      {
        key: ACCOUNT_TYPE,
        label: 'Account Type -> ConnectWise Type',
        entity: 'account',
        directions: ['push', 'pull'],
        bssField: 'account-type',
        remoteField: 'types',
        choicesFrom: 'company-types',
      },
    ],
    auth: {
      // Templates the host fills in: the connector never sees the private key.
      scheme: { tag: 'basic', val: ['{company-id}+{public-key}', '{private-key}'] },
      headers: [{ name: 'clientId', value: '{client-id}' }],
    },
    remoteHostVariable: 'url',
    documentationUrl: undefined,
    // Every host this connector will ever call: the host refuses a `url` setting elsewhere.
    // 127.0.0.1 is the local sandbox (`bss-host dev`, the tests); drop it for production.
    // Leave the list empty only for a remote installed at the customer's own address.
    reach: ['*.myconnectwise.net', '*.connectwisedev.com', '127.0.0.1'],
  };
}

/** The settings and an HTTP client for this call. */
function connect() {
  const settings = readSettings(VARIABLES);
  const http = new Http({ base: `${settings.url}/${API}`, headers: { accept: ACCEPT } });
  return { settings, http };
}

// ---------------------------------------------------------------------------------------------
// activate, lookup-choices

function activate() {
  const { settings, http } = connect();
  const company = settings['company-id'];
  let info;
  try {
    info = http.send('get', `${settings.url}/login/companyinfo/${encode(company)}`);
  } catch (e) {
    if (e?.tag === 'transient') {
      throw errors.invalidSettings([{ field: 'url', message: `cannot reach ConnectWise at ${settings.url}: ${e.val}` }]);
    }
    throw e;
  }
  if (info.status === 404) {
    throw errors.invalidSettings([
      { field: 'company-id', message: `ConnectWise at ${settings.url} knows no company ${JSON.stringify(company)}; check the company id` },
    ]);
  }
  const about = http.check(info) ?? {};
  try {
    http.get(`${COMPANIES}/statuses?pageSize=1`);
  } catch (e) {
    if (e?.tag === 'unauthorized') {
      const field = /clientid/i.test(e.val) ? 'client-id' : 'private-key';
      throw errors.invalidSettings([{ field, message: `ConnectWise refused these keys for company ${JSON.stringify(company)}: ${e.val}` }]);
    }
    throw e;
  }
  return `Connected to ConnectWise ${about.CompanyName ?? company} at ${settings.url}`;
}

/** @param {string} key */
function lookupChoices(key) {
  if (key !== 'company-types') throw errors.unsupported(`${NAME} has no choices named ${JSON.stringify(key)}`);
  const { http } = connect();
  return http
    .getAll(`${COMPANIES}/types?${query({ pageSize: 100, orderBy: 'id asc' })}`)
    .filter((t) => !t.inactiveFlag)
    .map((t) => ({ value: String(t.id), label: String(t.name ?? t.id) }));
}

// ---------------------------------------------------------------------------------------------
// push

/** ConnectWise field -> BSS field, for naming rejected and overwritten fields. */
const FIELD_NAMES = {
  identifier: 'bss-id',
  name: 'name',
  accountNumber: 'code',
  addressLine1: 'billing-address/line1',
  addressLine2: 'billing-address/line2',
  city: 'billing-address/city',
  state: 'billing-address/state',
  zip: 'billing-address/zip',
  phoneNumber: 'phone',
  faxNumber: 'fax',
  website: 'website',
  parentCompany: 'parent-account',
  types: 'account-type',
};

/** @param {string|undefined} v */
const text = (v) => (v === undefined || v === null || String(v).trim() === '' ? null : String(v));

/**
 * What the BSS says the company should be: `{ fields, typeId }` in ConnectWise terms.
 * @param {BssRecord} record @param {Account} account
 */
function desired(record, account) {
  const address = account.billingAddress ?? {};
  /** @type {{[field: string]: any}} */
  const fields = {
    identifier: record.bssId,
    name: account.name,
    accountNumber: text(account.code),
    addressLine1: text(address.line1),
    addressLine2: text(address.line2),
    city: text(address.city),
    state: text(address.state),
    zip: text(address.zip),
    phoneNumber: text(account.phone),
    faxNumber: text(account.fax),
    website: text(account.website),
    parentCompany: null,
  };
  if (account.parentAccount) {
    const ref = record.references.find((r) => r.field === 'parent-account');
    if (!ref) {
      throw errors.missingReference({ field: 'parent-account', entity: 'account', bssId: account.parentAccount });
    }
    fields.parentCompany = { id: companyId(ref.remoteId) };
  }
  let typeId;
  const kind = text(account.accountType);
  if (kind) {
    const mapped = lookups.lookup(ACCOUNT_TYPE, kind);
    if (!mapped || !/^\d+$/.test(mapped.trim())) {
      throw errors.rejected('account-type', `account type ${JSON.stringify(kind)} is not mapped in lookup Account Type -> ConnectWise Type`);
    }
    typeId = Number(mapped.trim());
  }
  return { fields, typeId };
}

/** @param {string} id */
function companyId(id) {
  if (!/^[1-9]\d{0,17}$/.test(id)) {
    throw errors.rejected('remote-id', `${JSON.stringify(id)} is not a ConnectWise record id (a positive whole number)`);
  }
  return Number(id);
}

/** Two ConnectWise values the same for an update: blanks alike, references by id. */
function same(a, b) {
  const norm = (v) => {
    if (v === undefined || v === null || v === '') return null;
    if (typeof v === 'object' && !Array.isArray(v) && 'id' in v) return `#${v.id}`;
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  return norm(a) === norm(b);
}

/** A ConnectWise value as a report says it. */
function valueText(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return String(v.name ?? v.identifier ?? v.id ?? JSON.stringify(v));
  return String(v);
}

/** Renames ConnectWise fields in a rejection to the BSS's names. */
function renamed(e) {
  if (e?.tag === 'rejected' || e?.payload?.tag === 'rejected') {
    const list = e.payload?.val ?? e.val;
    return errors.rejected(list.map((f) => ({ field: FIELD_NAMES[f.field.replace(/\/id$/, '')] ?? f.field, message: f.message })));
  }
  return e;
}

/**
 * @param {Entity} entity @param {PushItem[]} items @param {PushOptions} options
 */
function push(entity, items, options) {
  if (entity !== 'account') throw errors.unsupported(`${NAME} does not push ${entity} records`);
  const { http } = connect();
  return eachItem(items, (item) => {
    try {
      return pushAccount(http, item, options);
    } catch (e) {
      throw renamed(e);
    }
  });
}

/** @param {Http} http @param {PushItem} item @param {PushOptions} options @returns {Pushed} */
function pushAccount(http, item, options) {
  const record = item.record;
  if (record.data.tag !== 'account') throw errors.internal('an account record without account data');
  const want = desired(record, record.data.val);
  let id = record.remoteId;
  if (!id && record.maybeCreated) {
    // An earlier create's outcome is unknown: it may be there already.
    const ours = holders(http, record.bssId).filter((c) => carriesKey(c, record.data.val));
    if (ours.length > 1) {
      throw errors.rejected('bss-id', `ambiguous: ConnectWise holds ${ours.length} companies that may be this one (ids ${ours.map((c) => c.id).join(', ')}); link the right one with bss-host link INSTANCE account ${record.bssId} <id>`);
    }
    if (ours.length === 1) id = String(ours[0].id);
  }
  if (!id) return create(http, record, want, options);
  let base;
  if (item.lastPushed && item.lastPushed.data.tag === 'account') {
    try {
      base = desired({ ...record, references: item.lastPushed.references }, item.lastPushed.data.val);
    } catch {
      base = undefined; // the last push no longer maps: the update is only more careful
    }
  }
  return update(http, companyId(id), want, base, options);
}

/** The companies whose identifier is this BSS id. */
function holders(http, bssId) {
  const conditions = `identifier='${bssId.replace(/'/g, "''")}'`;
  return http.getAll(`${COMPANIES}?${query({ conditions, pageSize: PAGE_SIZE })}`);
}

/** A company holding this identifier is this record when its account number is the code too. */
function carriesKey(company, account) {
  return String(company.accountNumber ?? '').trim() === String(account.code ?? '').trim();
}

function create(http, record, want, options) {
  /** @type {{[field: string]: any}} */
  const body = Object.fromEntries(Object.entries(want.fields).filter(([, v]) => v !== null));
  if (want.typeId !== undefined) body.types = [{ id: want.typeId }];
  if (options.dryRun) return pushed('created', '');
  let created;
  try {
    created = http.post(COMPANIES, body);
  } catch (e) {
    const inUse = e?.tag === 'rejected' && e.val.some((f) => f.field === 'identifier' && /already (in use|exists)/i.test(f.message));
    if (!inUse) throw e;
    // ConnectWise has a company with this identifier: adopt it only if it carries our key.
    const found = holders(http, record.bssId);
    if (found.length === 1 && carriesKey(found[0], record.data.val)) {
      return update(http, found[0].id, want, undefined, options);
    }
    const holder = found[0]?.id ?? '?';
    throw errors.rejected('bss-id', `in use: ConnectWise company ${holder} already has identifier ${record.bssId} and does not carry this record's key; if it is the same record, link it: bss-host link INSTANCE account ${record.bssId} ${holder}`);
  }
  if (typeof created?.id !== 'number') throw errors.internal(`ConnectWise created a company but answered no id: ${JSON.stringify(created).slice(0, 200)}`);
  return pushed('created', String(created.id), { stored: storedOf(created) });
}

/**
 * A three-way update: a field is written only when the BSS changed it since its last push
 * (`base`; with no base, when it differs and the BSS has a value); a field ConnectWise changed
 * too is a conflict, written and reported (`bss-wins`) or holding the record (`report`).
 */
function update(http, id, want, base, options) {
  const path = `${COMPANIES}/${id}`;
  const current = http.get(path);
  /** @type {OverwrittenValue[]} */
  const overwritten = [];
  const operations = [];
  let conflicts = 0;
  for (const [field, value] of Object.entries(want.fields)) {
    const remote = current[field];
    if (same(remote, value)) continue;
    const remoteEmpty = remote === undefined || remote === null || remote === '';
    if (!base) {
      if (value === null) continue; // nothing is removed without a base
      if (!remoteEmpty) overwritten.push({ field: FIELD_NAMES[field] ?? field, remoteValue: valueText(remote), lastPushed: undefined });
    } else {
      const before = base.fields[field];
      if (same(before, value)) continue; // the BSS did not change it: ConnectWise's value stays
      if (!same(remote, before) && !remoteEmpty) {
        conflicts += 1;
        overwritten.push({
          field: FIELD_NAMES[field] ?? field,
          remoteValue: valueText(remote),
          lastPushed: before === null || before === undefined ? undefined : valueText(before),
        });
      }
    }
    operations.push(value === null ? { op: 'remove', path: field } : { op: 'replace', path: field, value });
  }
  const warnings = [];
  const types = (current.types ?? []).map((t) => t.id);
  if (want.typeId !== undefined && !types.includes(want.typeId) && (!base || base.typeId !== want.typeId)) {
    warnings.push('the account type changed; this template sets types only when it creates a company');
  }
  if (conflicts && options.conflicts === 'report') {
    return pushed('held', String(id), { overwritten, warnings });
  }
  if (operations.length === 0) {
    return pushed('unchanged', String(id), { stored: storedOf(current), warnings });
  }
  if (options.dryRun) return pushed('updated', String(id), { overwritten, warnings });
  const after = http.patch(path, operations);
  return pushed('updated', String(id), { overwritten, warnings, stored: storedOf(after) });
}

/** @param {Pushed['change']} change @param {string} remoteId @param {Partial<Pushed>} [more] @returns {Pushed} */
function pushed(change, remoteId, more = {}) {
  return { change, remoteId, overwritten: [], stored: undefined, warnings: [], ...more };
}

/** The company as pull maps it, for the host to recognise the echo of this push. */
function storedOf(company) {
  try {
    return toAccount(company);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// pull, fetch

/** @returns {PulledRecord} */
function toAccount(company) {
  const id = company?.id;
  const stamp = company?._info?.lastUpdated;
  if (typeof id !== 'number') throw errors.internal('ConnectWise sent a company without id');
  if (typeof stamp !== 'string') throw errors.internal(`company ${id} has no _info.lastUpdated`);
  const str = (v) => (typeof v === 'string' && v !== '' ? v : undefined);
  const warnings = [];
  let accountType;
  const first = Array.isArray(company.types) ? company.types[0] : undefined;
  if (first?.id !== undefined) {
    accountType = lookups.reverseLookup(ACCOUNT_TYPE, String(first.id));
    if (accountType === undefined) {
      warnings.push(`company type ${first.name ?? '?'} (id ${first.id}) is not mapped in lookup Account Type -> ConnectWise Type`);
    }
  }
  const address = {
    line1: str(company.addressLine1),
    line2: str(company.addressLine2),
    city: str(company.city),
    state: str(company.state),
    zip: str(company.zip),
    country: str(company.country?.name),
  };
  const references = [];
  if (company.parentCompany?.id !== undefined) {
    references.push({ field: 'parent-account', entity: /** @type {Entity} */ ('account'), remoteId: String(company.parentCompany.id) });
  }
  if (company.defaultContact?.id !== undefined) {
    references.push({ field: 'primary-contact', entity: /** @type {Entity} */ ('contact'), remoteId: String(company.defaultContact.id) });
  }
  return {
    remoteId: String(id),
    lastUpdated: stamp,
    data: {
      tag: 'account',
      val: {
        code: str(company.accountNumber) ?? str(company.identifier) ?? '',
        name: str(company.name) ?? '',
        accountType,
        status: str(company.status?.name),
        currency: undefined,
        billingAddress: Object.values(address).some((v) => v !== undefined) ? address : undefined,
        phone: str(company.phoneNumber),
        fax: str(company.faxNumber),
        website: str(company.website),
        parentAccount: undefined,
        primaryContact: undefined,
        extra: [],
      },
    },
    references,
    warnings,
  };
}

/**
 * @param {Entity} entity @param {string|undefined} since @param {string|undefined} pageToken
 * @returns {PullPage}
 */
function pull(entity, since, pageToken) {
  if (entity !== 'account') throw errors.unsupported(`${NAME} does not pull ${entity} records`);
  const { http } = connect();
  /** @type {{[k: string]: any}} */
  const params = { pageSize: PAGE_SIZE };
  if (since !== undefined) {
    if (!isTimestamp(since)) throw errors.internal(`the pull cursor ${JSON.stringify(since)} is not an RFC 3339 timestamp`);
    params.conditions = `lastUpdated>=[${since}]`;
  }
  if (pageToken !== undefined) {
    if (!/^\d+$/.test(pageToken)) throw errors.internal(`page token ${JSON.stringify(pageToken)} is not one this connector gave`);
    params.pageId = pageToken;
  }
  // Forward-only paging: ordered by id, and the Link header's next page names the last id seen.
  const { response, data } = http.call('get', `${COMPANIES}?${query(params)}`, {
    headers: { 'pagination-type': 'forward-only' },
  });
  if (!Array.isArray(data)) throw errors.internal('ConnectWise answered the company list with something that is not a list');
  const next = response.link('next');
  const nextPageToken = next ? queryParam(next, 'pageId') ?? String(data[data.length - 1]?.id ?? '') : undefined;
  log.debug(`pulled ${data.length} companies${nextPageToken ? `, next page after id ${nextPageToken}` : ''}`);
  return { records: data.map(toAccount), nextPageToken: nextPageToken || undefined };
}

/** @param {Entity} entity @param {string} remoteId */
function fetch(entity, remoteId) {
  if (entity !== 'account') throw errors.unsupported(`${NAME} does not fetch ${entity} records`);
  const { http } = connect();
  const response = http.send('get', `${COMPANIES}/${companyId(remoteId)}`);
  if (response.status === 404) {
    let code;
    try {
      code = response.json()?.code;
    } catch {
      code = undefined;
    }
    // Only ConnectWise's own "no such record" is a deletion; a wrong path is an error.
    if (String(code).toLowerCase() === 'notfound') return undefined;
  }
  const company = http.check(response);
  return company?.deletedFlag ? undefined : toAccount(company);
}

export const connector = defineConnector({
  manifest,
  activate,
  lookupChoices,
  push,
  pull,
  fetch,
  subscribe() {
    throw errors.unsupported(`${NAME} does not register callbacks; schedule pulls instead`);
  },
  remove() {
    throw errors.unsupported(`${NAME} does not remove records`);
  },
});
