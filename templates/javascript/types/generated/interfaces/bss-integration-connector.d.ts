/** @module Interface bss:integration/connector@1.4.0 **/
/**
 * The connector's description of itself. Must not call any import.
 */
export function manifest(): ConnectorManifest;
/**
 * Verifies the instance's settings against the remote (credentials, and each remote id a server
 * variable points at). On success, a one-line summary for the admin ("Connected to ...").
 */
export function activate(): string;
/**
 * The remote values an admin can choose for a lookup or a server variable (`choices-from` keys).
 */
export function lookupChoices(key: string): Array<Choice>;
/**
 * Creates or updates each record: one result per record, in order. An `err` of the whole call
 * means nothing was attempted (e.g. unauthorized). An update is three-way (since 1.2): a field
 * whose BSS value is the same as in `last-pushed` is left as the remote has it; a field the
 * BSS cleared is removed only if `last-pushed` had set it; a field both sides changed follows
 * `options.conflicts`.
 */
export function push(entity: Entity, records: Array<PushItem>, options: PushOptions): Array<Result<Pushed, ConnectorError>>;
/**
 * Reads records changed at or after `since` (all when absent), one page at a time.
 */
export function pull(entity: Entity, since: Timestamp | undefined, pageToken: string | undefined): PullPage;
/**
 * Since 1.3: reads one record by its remote id, mapped the way `pull` maps it; none when the
 * remote says it does not exist (ConnectWise: 404) or holds it as deleted. The host uses it to
 * fetch what a callback announced and to confirm a deletion before reporting it.
 */
export function fetch(entity: Entity, remoteId: string): PulledRecord | undefined;
/**
 * Since 1.3: makes the remote's callback registrations that deliver to `url` exactly one per
 * entity in `entities` (adds the missing, removes the others that deliver to `url`, leaves
 * registrations to other URLs alone); an empty list unsubscribes. Idempotent, so an
 * interrupted call is finished by calling it again. Returns the registrations in place.
 */
export function subscribe(url: string, entities: Array<Entity>): Array<Subscription>;
/**
 * Since 1.3: removes records from the remote, deleting or, where the remote keeps such
 * records, deactivating them: one result per remote id, in order. An `err` of the whole call
 * means nothing was attempted. With `options.dry-run`, says what would happen and writes
 * nothing.
 */
export function remove(entity: Entity, remoteIds: Array<string>, options: PushOptions): Array<Result<Removal, ConnectorError>>;
export type Entity = import('./bss-integration-types.js').Entity;
export type Direction = import('./bss-integration-types.js').Direction;
export type Operations = import('./bss-integration-types.js').Operations;
export type Record = import('./bss-integration-types.js').Record;
export type EntityData = import('./bss-integration-types.js').EntityData;
export type Reference = import('./bss-integration-types.js').Reference;
export type PulledRecord = import('./bss-integration-types.js').PulledRecord;
export type ConnectorError = import('./bss-integration-types.js').ConnectorError;
export type Timestamp = import('./bss-integration-types.js').Timestamp;
/**
 * How a server variable's value is typed and validated by the host.
 * # Variants
 * 
 * ## `"text"`
 * 
 * Free text.
 * ## `"secret"`
 * 
 * A secret (password, private key): stored encrypted, never shown back, never handed to the
 * connector; the host uses it only to build credentials (see `auth`).
 * ## `"url"`
 * 
 * An absolute http(s) URL, or a bare host name (https is assumed). Its host becomes one of
 * the instance's allowed outbound hosts.
 * ## `"integer"`
 * 
 * A whole number.
 * ## `"choice"`
 * 
 * One of `choices`.
 */
export type VariableKind = 'text' | 'secret' | 'url' | 'integer' | 'choice';
/**
 * A value an admin can pick: for a `choice` variable, or from `lookup-choices`.
 */
export interface Choice {
  value: string,
  label: string,
}
/**
 * A setting the connector needs, set per instance by the admin.
 */
export interface ServerVariable {
  /**
   * Stable key, lower-kebab-case (e.g. "company-id").
   */
  key: string,
  /**
   * Short label the admin sees (e.g. "Company ID").
   */
  label: string,
  /**
   * What the connector uses it for, in one sentence.
   */
  purpose: string,
  /**
   * Longer help: where to find the value, its format.
   */
  description: string,
  kind: VariableKind,
  /**
   * The allowed values when `kind` is `choice`.
   */
  choices: Array<Choice>,
  required: boolean,
  defaultValue?: string,
  /**
   * The `lookup-choices` key that lists valid remote values for this variable, when it points
   * into a remote setup table (e.g. "company-statuses").
   */
  choicesFrom?: string,
  /**
   * Since 1.2: the variable is required while one of these entity and direction pairs is
   * enabled in the instance's sync options, even when `required` is false (e.g. the ids of
   * payment methods once payments are pushed). The host's settings check says which.
   */
  requiredWhen: Array<[Entity, Direction]>,
}
/**
 * An entity and direction the connector supports, with the operations it can do.
 */
export interface SyncOption {
  entity: Entity,
  direction: Direction,
  operations: Operations,
}
/**
 * A table the admin fills that maps BSS values to remote values.
 */
export interface Lookup {
  /**
   * Stable key (e.g. "account-type").
   */
  key: string,
  /**
   * What the admin sees (e.g. "Account Type -> ConnectWise Type").
   */
  label: string,
  entity: Entity,
  directions: Array<Direction>,
  /**
   * The BSS field whose values are mapped (e.g. "account-type").
   */
  bssField: string,
  /**
   * The remote field they map to (e.g. "types").
   */
  remoteField: string,
  /**
   * The `lookup-choices` key listing valid remote values.
   */
  choicesFrom: string,
}
/**
 * A header the host adds to requests bound for the remote host. `value` is a template in
 * which `{key}` stands for the value of server variable `key` (secrets included).
 */
export interface HeaderTemplate {
  name: string,
  value: string,
}
/**
 * How the remote authenticates requests. Templates as in `header-template`.
 */
export type AuthScheme = AuthSchemeNone | AuthSchemeBasic | AuthSchemeBearer;
/**
 * No authentication header.
 */
export interface AuthSchemeNone {
  tag: 'none',
}
/**
 * HTTP Basic with these user-name and password templates.
 */
export interface AuthSchemeBasic {
  tag: 'basic',
  val: [string, string],
}
/**
 * `Authorization: Bearer <template>`.
 */
export interface AuthSchemeBearer {
  tag: 'bearer',
  val: string,
}
/**
 * The credentials the host injects into requests to the remote host (and to no other host).
 */
export interface Auth {
  scheme: AuthScheme,
  headers: Array<HeaderTemplate>,
}
/**
 * Everything the host needs to know about a connector before calling it.
 */
export interface ConnectorManifest {
  /**
   * Connector name, lower-kebab-case (e.g. "connectwise").
   */
  name: string,
  /**
   * Semantic version of the connector (e.g. "1.2.0").
   */
  version: string,
  description: string,
  serverVariables: Array<ServerVariable>,
  syncOptions: Array<SyncOption>,
  lookups: Array<Lookup>,
  auth: Auth,
  /**
   * The key of the `url` server variable that names the remote host; credentials go only there.
   */
  remoteHostVariable: string,
  /**
   * Since 1.1: where an admin reads how to set the connector up (an https URL), shown next to
   * its settings. A 1.0 connector has none.
   */
  documentationUrl?: string,
  /**
   * Since 1.4: the remote hosts this connector will ever call, as patterns: a host name
   * (`api.example.com`), a wildcard for its subdomains (`*.myconnectwise.net`, which does not
   * match `myconnectwise.net` itself), or an IP address, each optionally with `:port` (any port
   * without). The host refuses a `url` setting whose host is outside them, so a mistaken or
   * malicious setting cannot point the connector anywhere else. Empty: any host (as before
   * 1.4), for remotes installed at the customer's own address.
   */
  reach: Array<string>,
}
/**
 * What a successful `push` did to one record.
 * # Variants
 * 
 * ## `"created"`
 * 
 * ## `"updated"`
 * 
 * ## `"unchanged"`
 * 
 * ## `"held"`
 * 
 * Since 1.2: nothing was written because the remote changed a field the BSS changed too
 * and the policy is `report`; `overwritten` lists those fields with the remote's values.
 */
export type Change = 'created' | 'updated' | 'unchanged' | 'held';
/**
 * Since 1.2: a remote value an update replaced (or, when held, would have replaced).
 */
export interface OverwrittenValue {
  /**
   * The field in the canonical BSS shape ("billing-address/city", "extra/Region").
   */
  field: string,
  /**
   * The remote's value, as text.
   */
  remoteValue: string,
  /**
   * The value the BSS pushed before, as text; absent when the BSS had not set it.
   */
  lastPushed?: string,
}
export interface Pushed {
  change: Change,
  remoteId: string,
  /**
   * Since 1.2: remote values this push replaced although the remote had changed them since
   * the last push (or, with no last push known, that differed from the BSS's).
   */
  overwritten: Array<OverwrittenValue>,
  /**
   * Since 1.2: the record as the remote holds it after this push, mapped the way `pull`
   * maps it; the host stores it and reports a later pulled record equal to it as an echo of
   * this push rather than a change. Absent for entities the connector does not pull.
   */
  stored?: PulledRecord,
  /**
   * Since 1.2: what the host should show the admin about this record (lines of the
   * document that the BSS does not own and left alone, a value the remote normalised).
   */
  warnings: Array<string>,
}
/**
 * Since 1.2: who wins a field that both the BSS and the remote changed since the last push.
 * # Variants
 * 
 * ## `"bss-wins"`
 * 
 * The BSS is the system of record for what it pushes: its value is written and the
 * remote's is reported in `overwritten`.
 * ## `"report"`
 * 
 * Nothing of the record is written; it is answered `held` with the conflicting fields.
 */
export type ConflictPolicy = 'bss-wins' | 'report';
export interface PushOptions {
  /**
   * Say what would change, but send no write to the remote (the host also refuses any
   * request other than GET and HEAD during a dry run).
   */
  dryRun: boolean,
  /**
   * Since 1.2.
   */
  conflicts: ConflictPolicy,
}
/**
 * Since 1.2: what this instance last pushed for a record and the remote accepted.
 */
export interface LastPushed {
  data: EntityData,
  /**
   * The references as they were resolved then.
   */
  references: Array<Reference>,
}
/**
 * Since 1.2: one record to push, with the base of a three-way update.
 */
export interface PushItem {
  record: Record,
  /**
   * Absent for a create, and for a record pushed before the host kept it (or linked by
   * hand): then an update writes what differs but removes nothing the BSS leaves empty.
   */
  lastPushed?: LastPushed,
}
/**
 * One page of `pull`.
 */
export interface PullPage {
  records: Array<PulledRecord>,
  /**
   * Pass back to get the next page; absent on the last page.
   */
  nextPageToken?: string,
}
/**
 * Since 1.3: a callback registration the connector keeps on the remote, one per entity.
 */
export interface Subscription {
  entity: Entity,
  /**
   * What the remote calls the entity in its deliveries (ConnectWise: the `Type`, "company").
   */
  remoteType: string,
  /**
   * The remote's id of the registration.
   */
  remoteId: string,
}
/**
 * Since 1.3: what `remove` did to one record.
 * # Variants
 * 
 * ## `"deleted"`
 * 
 * The remote deleted it.
 * ## `"deactivated"`
 * 
 * The remote keeps such records and marked it inactive (ConnectWise companies).
 * ## `"already-gone"`
 * 
 * The remote had no such record (already deleted): nothing to do.
 */
export type Removal = 'deleted' | 'deactivated' | 'already-gone';
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
