/** @module Interface bss:integration/types@1.4.0 **/
export type Decimal = string;
export type Date = string;
export type Timestamp = string;
/**
 * The kinds of BSS record a connector can synchronise.
 * # Variants
 * 
 * ## `"account"`
 * 
 * ## `"contact"`
 * 
 * ## `"product"`
 * 
 * ## `"invoice"`
 * 
 * ## `"order"`
 * 
 * ## `"payment"`
 * 
 * ## `"subscription"`
 */
export type Entity = 'account' | 'contact' | 'product' | 'invoice' | 'order' | 'payment' | 'subscription';
/**
 * Push: BSS to remote. Pull: remote to BSS.
 * # Variants
 * 
 * ## `"push"`
 * 
 * ## `"pull"`
 */
export type Direction = 'push' | 'pull';
/**
 * What a sync option allows for one entity and direction.
 */
export interface Operations {
  create?: boolean,
  update?: boolean,
  delete?: boolean,
}
/**
 * A custom field: a name the BSS defines and its value.
 */
export interface CustomField {
  name: string,
  value: string,
}
/**
 * A postal address. `state` and `country` are names as the BSS keeps them; the connector
 * resolves them to remote values.
 */
export interface Address {
  line1?: string,
  line2?: string,
  city?: string,
  state?: string,
  zip?: string,
  country?: string,
}
/**
 * A customer account. References (`parent-account`, `primary-contact`) hold BSS ids; the host
 * resolves them to remote ids and passes those in the envelope's `references`.
 */
export interface Account {
  /**
   * The BSS account code (ConnectWise: accountNumber).
   */
  code: string,
  name: string,
  /**
   * The BSS account type; mapped through a lookup.
   */
  accountType?: string,
  status?: string,
  /**
   * ISO 4217 code as the BSS keeps it; mapped through a lookup.
   */
  currency?: string,
  billingAddress?: Address,
  phone?: string,
  fax?: string,
  website?: string,
  /**
   * BSS id of the parent account.
   */
  parentAccount?: string,
  /**
   * BSS id of the primary contact.
   */
  primaryContact?: string,
  extra: Array<CustomField>,
}
/**
 * A person at an account.
 */
export interface Contact {
  /**
   * BSS id of the account the contact belongs to.
   */
  account?: string,
  firstName: string,
  lastName?: string,
  title?: string,
  email?: string,
  phone?: string,
  mobile?: string,
  fax?: string,
  extra: Array<CustomField>,
}
/**
 * A catalogue product.
 */
export interface Product {
  /**
   * The BSS product code (ConnectWise: catalog identifier).
   */
  code: string,
  name: string,
  description?: string,
  customerDescription?: string,
  /**
   * The BSS product type; mapped through a lookup.
   */
  productType?: string,
  /**
   * The BSS unit type; mapped through a lookup.
   */
  unitType?: string,
  price?: Decimal,
  cost?: Decimal,
  taxable?: boolean,
  extra: Array<CustomField>,
}
/**
 * One line of an invoice or an order.
 */
export interface Line {
  /**
   * The line's own id within its document (stable across updates).
   */
  lineId: string,
  /**
   * BSS id of the product sold on this line.
   */
  product?: string,
  description?: string,
  quantity: Decimal,
  unitPrice: Decimal,
  unitCost?: Decimal,
  extra: Array<CustomField>,
}
export interface Invoice {
  number: string,
  /**
   * BSS id of the billed account.
   */
  account: string,
  /**
   * The BSS invoice type; mapped through a lookup.
   */
  invoiceType?: string,
  /**
   * The BSS invoice stage; mapped through a lookup.
   */
  stage?: string,
  date?: Date,
  dueDate?: Date,
  terms?: string,
  currency?: string,
  lines: Array<Line>,
  extra: Array<CustomField>,
}
export interface Order {
  number: string,
  /**
   * BSS id of the ordering account.
   */
  account: string,
  /**
   * BSS id of the ordering contact.
   */
  contact?: string,
  /**
   * The BSS order stage; mapped through a lookup.
   */
  stage?: string,
  orderDate?: Date,
  dueDate?: Date,
  poNumber?: string,
  terms?: string,
  currency?: string,
  lines: Array<Line>,
  extra: Array<CustomField>,
}
export interface Payment {
  /**
   * BSS id of the invoice paid.
   */
  invoice: string,
  /**
   * BSS id of the paying account.
   */
  account?: string,
  amount: Decimal,
  paymentDate: Date,
  /**
   * The BSS payment-method id.
   */
  method: string,
  reference?: string,
  extra: Array<CustomField>,
}
export interface Subscription {
  /**
   * BSS id of the subscribing account.
   */
  account: string,
  /**
   * BSS id of the product subscribed to.
   */
  product: string,
  name: string,
  /**
   * The BSS billing cycle (e.g. "Monthly"); mapped through a lookup.
   */
  billingCycle: string,
  quantity: Decimal,
  unitPrice: Decimal,
  unitCost?: Decimal,
  startDate?: Date,
  cancelledDate?: Date,
  /**
   * Billable, DoNotBill or NoCharge; the connector's default when absent.
   */
  billCustomer?: string,
  description?: string,
  extra: Array<CustomField>,
}
/**
 * The data of one record, in the canonical BSS shape of its entity.
 */
export type EntityData = EntityDataAccount | EntityDataContact | EntityDataProduct | EntityDataInvoice | EntityDataOrder | EntityDataPayment | EntityDataSubscription;
export interface EntityDataAccount {
  tag: 'account',
  val: Account,
}
export interface EntityDataContact {
  tag: 'contact',
  val: Contact,
}
export interface EntityDataProduct {
  tag: 'product',
  val: Product,
}
export interface EntityDataInvoice {
  tag: 'invoice',
  val: Invoice,
}
export interface EntityDataOrder {
  tag: 'order',
  val: Order,
}
export interface EntityDataPayment {
  tag: 'payment',
  val: Payment,
}
export interface EntityDataSubscription {
  tag: 'subscription',
  val: Subscription,
}
/**
 * A reference from one record to another, resolved to the other side's id.
 * `field` names the referencing field in the canonical shape ("parent-account", "lines/2/product").
 */
export interface Reference {
  field: string,
  entity: Entity,
  bssId: string,
  remoteId: string,
}
/**
 * What the host hands to `push`: one BSS record with everything the host knows about it.
 */
export interface Record {
  entity: Entity,
  bssId: string,
  /**
   * The remote id from the host's id map: present means update, absent means create.
   */
  remoteId?: string,
  /**
   * Set on a create whose earlier attempt had an unknown outcome (a crash or a timeout):
   * look the record up by its natural key (identifier, number, …) first, and update it if
   * it is already there, so a retry never duplicates it.
   */
  maybeCreated: boolean,
  data: EntityData,
  /**
   * The remote ids of the records this one references, resolved by the host.
   */
  references: Array<Reference>,
}
/**
 * A reference from a pulled record to another remote record; the host maps it to a BSS id.
 */
export interface RemoteReference {
  field: string,
  entity: Entity,
  remoteId: string,
}
/**
 * One record read from the remote by `pull`.
 */
export interface PulledRecord {
  remoteId: string,
  /**
   * The remote's own last-updated stamp (ConnectWise: `_info.lastUpdated`).
   */
  lastUpdated: Timestamp,
  /**
   * Reference fields (BSS ids) are left empty; `references` carries them.
   */
  data: EntityData,
  references: Array<RemoteReference>,
  /**
   * Things the host should show the admin: unmapped lookup values, dropped fields.
   */
  warnings: Array<string>,
}
/**
 * A problem with one field: a setting's key, or a record's field path.
 */
export interface FieldError {
  field: string,
  message: string,
}
/**
 * A record that references another that has no remote id yet.
 */
export interface MissingReference {
  field: string,
  entity: Entity,
  bssId: string,
}
/**
 * Why something failed, in a way the host can act on.
 */
export type ConnectorError = ConnectorErrorInvalidSettings | ConnectorErrorUnauthorized | ConnectorErrorForbidden | ConnectorErrorNotFound | ConnectorErrorRejected | ConnectorErrorMissingReference | ConnectorErrorRateLimited | ConnectorErrorTransient | ConnectorErrorUnsupported | ConnectorErrorInternal;
/**
 * Settings are wrong; one entry per problem key. Fix the settings, then retry.
 */
export interface ConnectorErrorInvalidSettings {
  tag: 'invalid-settings',
  val: Array<FieldError>,
}
/**
 * The remote refused the credentials.
 */
export interface ConnectorErrorUnauthorized {
  tag: 'unauthorized',
  val: string,
}
/**
 * The credentials are valid but lack a permission.
 */
export interface ConnectorErrorForbidden {
  tag: 'forbidden',
  val: string,
}
/**
 * The remote has no such record.
 */
export interface ConnectorErrorNotFound {
  tag: 'not-found',
  val: string,
}
/**
 * The remote rejected the record; one entry per field. Retrying unchanged will fail again.
 */
export interface ConnectorErrorRejected {
  tag: 'rejected',
  val: Array<FieldError>,
}
/**
 * A referenced record has not been pushed yet: retryable once it has.
 */
export interface ConnectorErrorMissingReference {
  tag: 'missing-reference',
  val: MissingReference,
}
/**
 * The remote asked us to slow down; retry after this many milliseconds, if it said.
 */
export interface ConnectorErrorRateLimited {
  tag: 'rate-limited',
  val: bigint | undefined,
}
/**
 * A failure that may pass: timeouts, 5xx, dropped connections. Retryable.
 */
export interface ConnectorErrorTransient {
  tag: 'transient',
  val: string,
}
/**
 * The connector does not do this (entity, direction or operation).
 */
export interface ConnectorErrorUnsupported {
  tag: 'unsupported',
  val: string,
}
/**
 * A bug or an unexpected answer; not retryable without a change.
 */
export interface ConnectorErrorInternal {
  tag: 'internal',
  val: string,
}
