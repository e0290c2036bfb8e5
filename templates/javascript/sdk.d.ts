// Declarations of sdk.js, the thin JavaScript SDK for bss:integration@1.4.0 connectors.
import type { ConnectorExport } from './types/index.js';
import type {
  ConnectorError as ConnectorErrorValue,
  Entity,
  FieldError,
} from './types/generated/interfaces/bss-integration-types.js';
import type { ServerVariable } from './types/generated/interfaces/bss-integration-connector.js';
import type { LookupEntry } from './types/generated/interfaces/bss-integration-settings.js';
import type { Method } from './types/generated/interfaces/bss-integration-http.js';

export type ConnectorErrorTag = ConnectorErrorValue['tag'];
export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };

/** The contract's `connector-error`, as an exception. `payload` is the WIT value. */
export class ConnectorError extends Error {
  constructor(tag: ConnectorErrorTag, val?: unknown, message?: string);
  readonly payload: ConnectorErrorValue;
  readonly tag: ConnectorErrorTag;
  readonly val: any;
}

/** A constructor for every `connector-error` variant. */
export const errors: {
  invalidSettings(fields: FieldError[]): ConnectorError;
  unauthorized(message: string): ConnectorError;
  forbidden(message: string): ConnectorError;
  notFound(message: string): ConnectorError;
  rejected(fields: FieldError[]): ConnectorError;
  rejected(field: string, message: string): ConnectorError;
  missingReference(reference: { field: string; entity: Entity; bssId: string }): ConnectorError;
  /** Milliseconds (number or BigInt; carried as u64, i.e. BigInt), or undefined. */
  rateLimited(ms?: number | bigint): ConnectorError;
  transient(message: string): ConnectorError;
  unsupported(message: string): ConnectorError;
  internal(message: string): ConnectorError;
};

/** Any thrown value as a `connector-error` (non-ConnectorErrors become `internal` with the stack). */
export function toConnectorError(error: unknown): ConnectorErrorValue;
export function ok<T>(val: T): { tag: 'ok'; val: T };
export function err(error: unknown): { tag: 'err'; val: ConnectorErrorValue };
/** One result per item, in order; after a `rate-limited` the rest are answered the same. */
export function eachItem<I, T>(items: I[], fn: (item: I, index: number) => T): Array<Result<T, ConnectorErrorValue>>;

/** The wrapped `connector` export; missing functions answer `unsupported`. */
export function defineConnector(impl: Partial<ConnectorExport> & Pick<ConnectorExport, 'manifest'>): ConnectorExport;

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const log: { [L in Level]: (...parts: unknown[]) => void } & { enabled(level: Level): boolean };

/** `api-na.example.com` -> `https://api-na.example.com`; throws a message string when unusable. */
export function siteOf(value: string): string;
/** Every non-secret server variable typed by kind; all problems in ONE `invalid-settings`, thrown. */
export function readSettings(variables: ServerVariable[]): { [key: string]: string | number | undefined };
export const lookups: {
  lookup(key: string, bssValue: string): string | undefined;
  reverseLookup(key: string, remoteValue: string): string | undefined;
  table(key: string): LookupEntry[];
};

export function encode(value: unknown): string;
export function query(params: { [key: string]: unknown }): string;
export function queryParam(url: string, name: string): string | undefined;
export function isTimestamp(text: string): boolean;

export class Response {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
  header(name: string): string | undefined;
  text(): string;
  json(): any;
  link(rel?: string): string | undefined;
}

/** `http-error` (thrown by bss:integration/http's send) as a ConnectorError. */
export function transportError(e: unknown): ConnectorError;
export function errorBody(response: Response): { message: string; code?: string; fields: FieldError[] };
/** 429 -> rate-limited(Retry-After), 5xx -> transient, 401/403/404, other 4xx -> rejected(fields). */
export function statusError(response: Response): ConnectorError;

export interface SendOptions {
  json?: unknown;
  body?: string | Uint8Array;
  headers?: { [name: string]: string };
}

export class Http {
  constructor(options?: { base?: string; headers?: { [name: string]: string } });
  base: string;
  requests: number;
  url(path: string): string;
  send(method: Method | Uppercase<Method>, path: string, options?: SendOptions): Response;
  check(response: Response): any;
  call(method: Method | Uppercase<Method>, path: string, options?: SendOptions): { response: Response; data: any };
  get(path: string, options?: SendOptions): any;
  post(path: string, json: unknown, options?: SendOptions): any;
  put(path: string, json: unknown, options?: SendOptions): any;
  patch(path: string, json: unknown, options?: SendOptions): any;
  delete(path: string, options?: SendOptions): any;
  getAll(path: string, options?: { maxPages?: number; items?: (page: any) => any[]; headers?: { [name: string]: string } }): any[];
  getAllByToken(firstPath: string, options: { pathOf(token: string): string; tokenOf(page: any): string | undefined | null; items(page: any): any[]; maxPages?: number }): any[];
}
