// The thin JavaScript SDK for bss:integration@1.4.0 connectors (built with ComponentizeJS).
//
// What it gives a connector, and nothing more:
// - `defineConnector(impl)`: the `connector` export with every function wrapped, so an uncaught
//   exception becomes the contract's `internal` error carrying the exception and its stack (without
//   it ComponentizeJS lowers the Error object as the error variant and the host reads
//   `invalid variant tag value 'undefined'`); a function the connector leaves out answers
//   `unsupported`.
// - `ConnectorError` and a constructor for every `connector-error` variant (`errors.*`), plus
//   `ok` / `err` / `eachItem` for the per-record results of `push` and `remove`.
// - `Http`: requests over `bss:integration/http` with JSON bodies, statuses mapped to the contract's
//   errors (429 + Retry-After -> rate-limited, 5xx -> transient, 401/403/404, 4xx with a
//   ConnectWise-style body -> rejected with its fields), transport errors mapped too, and paging
//   by `Link` header or by a token in the JSON body.
// - `readSettings(variables)`: reads every server variable of the manifest and collects every
//   missing or malformed value into ONE `invalid-settings` error.
// - `log`: the host's log (`log.info(...)`, with `log.enabled(level)`).
//
// Connectors are stateless between calls: a call runs in a fresh instance or in one the host
// kept from an earlier call of the same instance and settings, so module globals may or may not
// hold what an earlier call left; never rely on either.

import { send as hostSend } from 'bss:integration/http@1.4.0';
import * as hostLog from 'bss:integration/log@1.4.0';
import * as hostSettings from 'bss:integration/settings@1.4.0';

// ---------------------------------------------------------------------------------------------
// Errors

/** The contract's `connector-error`, thrown. `payload` is the WIT value `{ tag, val }`. */
export class ConnectorError extends Error {
  constructor(tag, val, message) {
    super(message ?? describe(tag, val));
    this.name = 'ConnectorError';
    this.payload = val === undefined ? { tag } : { tag, val };
  }
  get tag() {
    return this.payload.tag;
  }
  get val() {
    return this.payload.val;
  }
}

function describe(tag, val) {
  if (Array.isArray(val)) {
    return `${tag}: ${val.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join('; ')}`;
  }
  if (val && typeof val === 'object') return `${tag}: ${JSON.stringify(val)}`;
  return val === undefined ? tag : `${tag}: ${val}`;
}

const fieldList = (fields) =>
  fields.map((f) => ({ field: String(f.field ?? ''), message: String(f.message ?? '') }));

/** Constructors for every `connector-error` variant. Each returns a throwable ConnectorError. */
export const errors = {
  /** Settings are wrong: one `{field, message}` per problem key. */
  invalidSettings: (fields) => new ConnectorError('invalid-settings', fieldList(fields)),
  unauthorized: (message) => new ConnectorError('unauthorized', String(message)),
  forbidden: (message) => new ConnectorError('forbidden', String(message)),
  notFound: (message) => new ConnectorError('not-found', String(message)),
  /** `rejected([{field, message}, ...])` or `rejected(field, message)`. */
  rejected: (fields, message) =>
    new ConnectorError(
      'rejected',
      fieldList(typeof fields === 'string' ? [{ field: fields, message }] : fields),
    ),
  /** A referenced record has no remote id yet: `{field, entity, bssId}`. */
  missingReference: ({ field, entity, bssId }) =>
    new ConnectorError('missing-reference', { field, entity, bssId }),
  /** Retry after `ms` milliseconds (a number or BigInt), or when the host likes (undefined). */
  rateLimited: (ms) =>
    new ConnectorError('rate-limited', ms === undefined || ms === null ? undefined : BigInt(ms)),
  transient: (message) => new ConnectorError('transient', String(message)),
  unsupported: (message) => new ConnectorError('unsupported', String(message)),
  internal: (message) => new ConnectorError('internal', String(message)),
};

const TAGS = new Set([
  'invalid-settings', 'unauthorized', 'forbidden', 'not-found', 'rejected', 'missing-reference',
  'rate-limited', 'transient', 'unsupported', 'internal',
]);

const MAX_INTERNAL = 4000;

/** Any thrown value as the contract's `connector-error` payload `{ tag, val }`. */
export function toConnectorError(error) {
  if (error instanceof ConnectorError) return error.payload;
  if (error && typeof error === 'object' && TAGS.has(error.tag)) return error;
  let text;
  if (error instanceof Error) {
    text = `${error.name}: ${error.message}`;
    const stack = String(error.stack ?? '').trim();
    if (stack) text += `\n${stack}`;
  } else {
    try {
      text = `uncaught ${typeof error}: ${typeof error === 'string' ? error : JSON.stringify(error)}`;
    } catch {
      text = `uncaught ${typeof error}: ${String(error)}`;
    }
  }
  if (text.length > MAX_INTERNAL) text = `${text.slice(0, MAX_INTERNAL)}…`;
  return { tag: 'internal', val: text };
}

/** `result` ok case, for lists of results (`push`, `remove`). */
export const ok = (val) => ({ tag: 'ok', val });
/** `result` err case from any thrown value (see `toConnectorError`). */
export const err = (error) => ({ tag: 'err', val: toConnectorError(error) });

/**
 * Runs `fn(item, index)` for each item and answers one result per item, in order: a return is
 * `ok`, a throw is `err` (typed errors as they are, anything else `internal`). After a
 * `rate-limited` answer the remaining items are answered the same without being attempted.
 */
export function eachItem(items, fn) {
  const out = [];
  let stop;
  items.forEach((item, index) => {
    if (stop) {
      out.push({ tag: 'err', val: stop });
      return;
    }
    try {
      out.push(ok(fn(item, index)));
    } catch (e) {
      const val = toConnectorError(e);
      if (val.tag === 'rate-limited') stop = val;
      out.push({ tag: 'err', val });
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The export

const RESULT_EXPORTS = ['activate', 'lookupChoices', 'push', 'pull', 'fetch', 'subscribe', 'remove'];

/**
 * The `connector` export: `export const connector = defineConnector({ manifest() {...}, ... })`.
 * Every function but `manifest` returns `result<_, connector-error>`: return the ok value, throw
 * for the error. Anything thrown that is not a ConnectorError becomes `internal` with its stack.
 */
export function defineConnector(impl) {
  if (typeof impl?.manifest !== 'function') throw new TypeError('a connector needs manifest()');
  const wrapped = {
    manifest() {
      // No result to carry an error: an exception here traps, and the host refuses the component.
      return impl.manifest();
    },
  };
  for (const name of RESULT_EXPORTS) {
    const fn = impl[name];
    wrapped[name] = function (...args) {
      try {
        if (typeof fn !== 'function') {
          throw errors.unsupported(`this connector does not implement ${name}`);
        }
        return fn.apply(impl, args);
      } catch (e) {
        // ComponentizeJS turns a throw from a result-returning export into the err case; the
        // thrown value must be the variant itself.
        throw toConnectorError(e);
      }
    };
  }
  return wrapped;
}

// ---------------------------------------------------------------------------------------------
// Logging

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const stringify = (parts) =>
  parts
    .map((p) => (typeof p === 'string' ? p : p instanceof Error ? `${p.message}\n${p.stack}` : safeJson(p)))
    .join(' ');
function safeJson(v) {
  try {
    return typeof v === 'bigint' ? v.toString() : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}

/** The host's log: `log.info('pushed', id)`. Lines the host would drop are not even built. */
export const log = Object.fromEntries([
  ...LEVELS.map((level) => [
    level,
    (...parts) => {
      if (hostLog.enabled(level)) hostLog.write(level, stringify(parts));
    },
  ]),
  ['enabled', (level) => hostLog.enabled(level)],
]);

// ---------------------------------------------------------------------------------------------
// Settings

/** `api-na.example.com` -> `https://api-na.example.com`; any path is dropped. Throws a message. */
export function siteOf(value) {
  const url = value.trim();
  let scheme = 'https';
  let rest = url;
  const at = url.indexOf('://');
  if (at >= 0) {
    scheme = url.slice(0, at).toLowerCase();
    rest = url.slice(at + 3);
  }
  if (scheme !== 'http' && scheme !== 'https') {
    throw `${JSON.stringify(url)} must be an http or https address, e.g. api-na.myconnectwise.net`;
  }
  const authority = rest.split(/[/?#]/)[0];
  if (!authority || authority.includes('@') || authority.includes(' ')) {
    throw `${JSON.stringify(url)} is not a site address; give it as api-na.myconnectwise.net`;
  }
  return `${scheme}://${authority}`;
}

/**
 * Reads the instance's settings as the manifest declares them (`manifest().serverVariables`) and
 * answers `{ key: value }` with values typed by kind: `url` -> `scheme://host[:port]`, `integer` ->
 * a Number, `choice` -> one of its choices, `text` -> trimmed text. Defaults apply; unset optional
 * values are `undefined`; secrets are never readable and are skipped. Every missing or malformed
 * value is collected into ONE `invalid-settings` error, thrown.
 */
export function readSettings(variables) {
  const values = {};
  const problems = [];
  for (const v of variables) {
    if (v.kind === 'secret') continue;
    const raw = hostSettings.get(v.key);
    const text = raw === undefined || raw === null ? '' : String(raw).trim();
    const value = text || (v.defaultValue ?? '').trim();
    if (!value) {
      if (v.required) problems.push({ field: v.key, message: `${v.label || v.key} is required` });
      continue;
    }
    try {
      switch (v.kind) {
        case 'url':
          values[v.key] = siteOf(value);
          break;
        case 'integer':
          if (!/^-?\d+$/.test(value)) throw `${JSON.stringify(value)} is not a whole number`;
          values[v.key] = Number(value);
          break;
        case 'choice': {
          const allowed = (v.choices ?? []).map((c) => c.value);
          if (!allowed.includes(value)) throw `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`;
          values[v.key] = value;
          break;
        }
        default:
          values[v.key] = value;
      }
    } catch (message) {
      problems.push({ field: v.key, message: String(message) });
    }
  }
  if (problems.length) throw errors.invalidSettings(problems);
  return values;
}

/** Lookups: `lookup(key, bssValue)`, `reverseLookup(key, remoteValue)`, `table(key)`. */
export const lookups = {
  lookup: (key, bssValue) => hostSettings.lookup(key, bssValue),
  reverseLookup: (key, remoteValue) => hostSettings.reverseLookup(key, remoteValue),
  table: (key) => hostSettings.lookupTable(key),
};

// ---------------------------------------------------------------------------------------------
// HTTP

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Percent-encodes a query value (everything but A-Z a-z 0-9 - _ . ~). */
export function encode(value) {
  return Array.from(encoder.encode(String(value)), (b) =>
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f || b === 0x2e || b === 0x7e
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
  ).join('');
}

/** `{a: 1, b: undefined}` -> `a=1` (undefined and null skipped). */
export function query(params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encode(k)}=${encode(v)}`)
    .join('&');
}

/** A response with helpers: `status`, `headers`, `body` (Uint8Array), `header()`, `text()`, `json()`, `link()`. */
export class Response {
  constructor(raw) {
    this.status = raw.status;
    this.headers = raw.headers;
    this.body = raw.body;
  }
  /** The first value of header `name` (any case), or undefined. */
  header(name) {
    const lower = name.toLowerCase();
    const found = this.headers.find(([n]) => n.toLowerCase() === lower);
    return found ? found[1] : undefined;
  }
  text() {
    return decoder.decode(this.body);
  }
  /** The body parsed as JSON (an empty body is null); a body that is not JSON is `transient`. */
  json() {
    if (this.body.length === 0) return null;
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw errors.transient(`the remote answered ${this.status} with a body that is not valid JSON (${e.message})`);
    }
  }
  /** The URL the `Link` header gives for `rel` ("next", "last", ...), or undefined. */
  link(rel = 'next') {
    const header = this.header('link');
    if (!header) return undefined;
    for (const part of header.split(',')) {
      const [target, ...params] = part.split(';');
      if (params.some((p) => p.trim() === `rel="${rel}"` || p.trim() === `rel=${rel}`)) {
        return target.trim().replace(/^</, '').replace(/>$/, '');
      }
    }
    return undefined;
  }
}

/** `bss:integration/http`'s `http-error` as the contract's connector error. */
export function transportError(e) {
  const p = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
  if (!p || typeof p !== 'object' || typeof p.tag !== 'string') {
    return e instanceof ConnectorError ? e : errors.internal(`http.send failed: ${String(e?.message ?? e)}`);
  }
  switch (p.tag) {
    case 'host-not-allowed':
    case 'private-address':
      return errors.invalidSettings([{ field: 'url', message: `the host refused to connect: ${p.val}` }]);
    case 'timeout':
      return errors.transient(`the remote did not answer in time: ${p.val}`);
    case 'transport':
      return errors.transient(`could not reach the remote: ${p.val}`);
    case 'request-limit':
      return errors.transient(`this call used its budget of ${p.val} requests; the rest wait for the next call`);
    case 'response-too-large':
      return errors.internal(`a response exceeded ${p.val} bytes`);
    case 'invalid-request':
      return errors.internal(`the connector built a bad request: ${p.val}`);
    case 'write-in-dry-run':
      return errors.internal('the connector tried to write during a dry run');
    default:
      return errors.internal(`http.send failed: ${p.tag}`);
  }
}

/**
 * The error body of a ConnectWise-style answer: `{code, message, errors: [{code, message,
 * resource, field}]}` -> `{ message, code, fields: [{field, message}] }`.
 */
export function errorBody(response) {
  let body;
  try {
    body = JSON.parse(response.text());
  } catch {
    const text = response.text().slice(0, 200).trim();
    return { message: text || `HTTP ${response.status}`, code: undefined, fields: [] };
  }
  if (!body || typeof body !== 'object') return { message: `HTTP ${response.status}`, code: undefined, fields: [] };
  const fields = Array.isArray(body.errors)
    ? body.errors.map((e) => ({ field: String(e?.field ?? ''), message: String(e?.message ?? e?.code ?? 'invalid') }))
    : [];
  return { message: String(body.message ?? `HTTP ${response.status}`), code: body.code, fields };
}

/** The contract's error for a response that is not a 2xx. */
export function statusError(response) {
  const { message, fields } = errorBody(response);
  const status = response.status;
  if (status === 429) {
    const after = response.header('retry-after');
    const seconds = after !== undefined && /^\s*\d+\s*$/.test(after) ? Number(after) : undefined;
    return errors.rateLimited(seconds === undefined ? undefined : seconds * 1000);
  }
  if (status >= 500) return errors.transient(`the remote failed with ${status}: ${message}`);
  if (status === 401) return errors.unauthorized(`the remote refused the credentials (${message})`);
  if (status === 403) return errors.forbidden(`the remote refused access (${message})`);
  if (status === 404) return errors.notFound(message);
  if (status >= 400 && status < 500) {
    return errors.rejected(fields.length ? fields : [{ field: '', message }]);
  }
  return errors.internal(`the remote answered ${status}: ${message}`);
}

/**
 * Requests over `bss:integration/http`. `base` is prefixed to relative paths; `headers` go on
 * every request (credentials are added by the host, never here). It never sleeps or retries:
 * that is the host's job. After a 429 every later request of the call fails `rate-limited`
 * without being sent.
 */
export class Http {
  constructor({ base = '', headers = {} } = {}) {
    this.base = base.replace(/\/+$/, '');
    this.headers = Object.entries(headers);
    this.rateLimited = undefined;
    this.requests = 0;
  }

  url(path) {
    return /^https?:\/\//i.test(path) ? path : `${this.base}/${String(path).replace(/^\/+/, '')}`;
  }

  /**
   * Sends and answers the Response whatever its status. `options`: `json` (a value sent as JSON),
   * `body` (a string or Uint8Array), `headers` (object).
   */
  send(method, path, options = {}) {
    if (this.rateLimited) throw this.rateLimited;
    const headers = [...this.headers, ...Object.entries(options.headers ?? {})].map(([n, v]) => [n, String(v)]);
    let body;
    if (options.json !== undefined) {
      body = encoder.encode(JSON.stringify(options.json));
      if (!headers.some(([n]) => n.toLowerCase() === 'content-type')) headers.push(['content-type', 'application/json']);
    } else if (options.body !== undefined) {
      body = typeof options.body === 'string' ? encoder.encode(options.body) : options.body;
    }
    let raw;
    this.requests += 1;
    try {
      raw = hostSend({ method: method.toLowerCase(), url: this.url(path), headers, body });
    } catch (e) {
      throw transportError(e);
    }
    return new Response(raw);
  }

  /** The parsed JSON of a 2xx, else the mapped error, thrown. */
  check(response) {
    if (response.status >= 200 && response.status < 300) return response.json();
    const error = statusError(response);
    if (error.tag === 'rate-limited') this.rateLimited = error;
    throw error;
  }

  /** Sends and answers `{ response, data }` for a 2xx (data = parsed JSON), else throws. */
  call(method, path, options) {
    const response = this.send(method, path, options);
    return { response, data: this.check(response) };
  }

  get(path, options) {
    return this.call('get', path, options).data;
  }
  post(path, json, options) {
    return this.call('post', path, { ...options, json }).data;
  }
  put(path, json, options) {
    return this.call('put', path, { ...options, json }).data;
  }
  patch(path, json, options) {
    return this.call('patch', path, { ...options, json }).data;
  }
  delete(path, options) {
    return this.call('delete', path, options).data;
  }

  /**
   * Every item of a paged list, following the `Link` header's `rel="next"` (absolute or
   * relative), up to `maxPages`. Each page's JSON must be an array, or `items(page)` picks it out.
   */
  getAll(path, { maxPages = 1000, items = (page) => page, headers } = {}) {
    const all = [];
    let next = path;
    for (let page = 0; next && page < maxPages; page += 1) {
      const { response, data } = this.call('get', next, { headers });
      const list = items(data);
      if (!Array.isArray(list)) throw errors.internal(`${path} answered something that is not a list`);
      all.push(...list);
      next = response.link('next');
    }
    return all;
  }

  /**
   * Every item of a list paged by a token in the JSON body: `tokenOf(page)` gives the next
   * token (undefined on the last page), `pathOf(token)` the path of the page after it, and
   * `items(page)` the page's items.
   */
  getAllByToken(firstPath, { pathOf, tokenOf, items, maxPages = 1000 }) {
    const all = [];
    let path = firstPath;
    for (let page = 0; path && page < maxPages; page += 1) {
      const data = this.get(path);
      all.push(...items(data));
      const token = tokenOf(data);
      path = token === undefined || token === null || token === '' ? undefined : pathOf(token);
    }
    return all;
  }
}

/** A query parameter of a URL (absolute or relative), or undefined. */
export function queryParam(url, name) {
  const q = url.split('#')[0].split('?')[1];
  if (!q) return undefined;
  for (const pair of q.split('&')) {
    const [k, v = ''] = pair.split('=');
    if (decodeURIComponent(k) === name) return decodeURIComponent(v.replace(/\+/g, ' '));
  }
  return undefined;
}

/** Whether `text` is an RFC 3339 timestamp (`2026-01-31T12:00:00Z`, fraction and offset allowed). */
export function isTimestamp(text) {
  return /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(String(text));
}
