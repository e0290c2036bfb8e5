"""A small but real bss:integration connector in Python: BSS accounts <-> ConnectWise companies.

Built with componentize-py (see build.sh); `bss_sdk.py` beside it is the thin SDK. The class
`Connector` below is the export: componentize-py finds it by the exported interface's name.

- manifest: the ConnectWise site (`url`), the API keys as host-injected credentials (HTTP Basic
  `{company-id}+{public-key}` / `{private-key}` and the `clientId` header: the connector never sees
  the private key), account push (create, update) and pull, one lookup (Account Type ->
  ConnectWise company type).
- activate: checks the settings, then calls `system/info` once.
- lookup-choices "company-types": every page of `company/companies/types` (Link-header paging).
- push: accounts -> `POST company/companies` (create) or a JSON Patch of what the BSS changed
  (three-way update); a create whose earlier outcome is unknown looks the company up first.
- pull: companies changed since the cursor, forward-only pages (`pageId` as the page token).
- fetch: one company by id. subscribe, remove: `unsupported`.

Rename the connector by replacing NAME below (the only place it is written).
"""

import json

import bss_sdk as sdk
from wit_world import exports
from wit_world.exports.connector import (
    Auth, AuthScheme_Basic, Change, Choice, ConflictPolicy, ConnectorManifest, HeaderTemplate,
    Lookup, OverwrittenValue, PullPage, Pushed, ServerVariable, SyncOption, VariableKind,
)
from wit_world.imports import settings as wit_settings
from wit_world.imports.types import (
    Account, Address, Direction, Entity, EntityData_Account, Operations, PulledRecord,
    RemoteReference,
)

NAME = "template-connector"
VERSION = "0.1.0"

CODEBASE = "v4_6_release"  # the API path segment almost every ConnectWise site serves
ACCEPT = "application/vnd.connectwise.com+json; version=2026.4"
PAGE_SIZE = 1000
COMPANIES = "company/companies"
ACCOUNT_TYPE = "account-type"  # the lookup
COMPANY_TYPES = "company-types"  # its choices

# ConnectWise company field -> BSS account field (canonical path), for the fields this template
# writes. Also names rejected fields the way the BSS knows them.
FIELDS = {
    "identifier": "bss-id",
    "name": "name",
    "accountNumber": "code",
    "addressLine1": "billing-address/line1",
    "addressLine2": "billing-address/line2",
    "city": "billing-address/city",
    "state": "billing-address/state",
    "zip": "billing-address/zip",
    "phoneNumber": "phone",
    "faxNumber": "fax",
    "website": "website",
    "parentCompany": "parent-account",
}
REFERENCE_FIELDS = {"parentCompany"}  # {"id": n} on the wire; the id in the flat maps


# ------------------------------------------------------------------------------------------------
# Manifest
# ------------------------------------------------------------------------------------------------


def variable(key, label, purpose, description, kind, required=True):
    return ServerVariable(
        key=key, label=label, purpose=purpose, description=description, kind=kind, choices=[],
        required=required, default_value=None, choices_from=None, required_when=[],
    )


def manifest():
    return ConnectorManifest(
        name=NAME,
        version=VERSION,
        description="Accounts to and from ConnectWise Manage companies (Python template).",
        server_variables=[
            variable("url", "ConnectWise URL", "The ConnectWise site the connector talks to.",
                     "As in your browser, e.g. api-na.myconnectwise.net (https is assumed).",
                     VariableKind.URL),
            variable("company-id", "Company ID", "Your company; part of the API user name.",
                     "The company id you log in with, e.g. mycompany.", VariableKind.TEXT),
            variable("public-key", "Public key", "The API member's public key.",
                     "System > Members > API Members > API Keys.", VariableKind.TEXT),
            variable("private-key", "Private key", "The API member's private key (the password).",
                     "Shown once when the key is made. Stored encrypted; never shown again.",
                     VariableKind.SECRET),
            variable("client-id", "Client Id", "Identifies this integration (the clientId header).",
                     "A GUID from developer.connectwise.com.", VariableKind.TEXT),
        ],
        sync_options=[
            SyncOption(Entity.ACCOUNT, Direction.PUSH, Operations.CREATE | Operations.UPDATE),
            SyncOption(Entity.ACCOUNT, Direction.PULL, Operations.CREATE | Operations.UPDATE),
        ],
        lookups=[
            Lookup(key=ACCOUNT_TYPE, label="Account Type -> ConnectWise Type", entity=Entity.ACCOUNT,
                   directions=[Direction.PUSH, Direction.PULL], bss_field="account-type",
                   remote_field="types", choices_from=COMPANY_TYPES),
        ],
        auth=Auth(
            scheme=AuthScheme_Basic(("{company-id}+{public-key}", "{private-key}")),
            headers=[HeaderTemplate(name="clientId", value="{client-id}")],
        ),
        remote_host_variable="url",
        documentation_url=None,
        # Every host this connector will ever call: the host refuses a `url` setting elsewhere.
        # 127.0.0.1 is the local sandbox (`bss-host dev`, the tests); drop it for production.
        # Leave the list empty only for a remote installed at the customer's own address.
        reach=["*.myconnectwise.net", "*.connectwisedev.com", "127.0.0.1"],
    )


# ------------------------------------------------------------------------------------------------
# Settings and client
# ------------------------------------------------------------------------------------------------


def client():
    """The settings, checked (one `invalid-settings` naming every problem), as a client."""
    s = sdk.Settings()
    site = s.url("url")
    s.text("company-id")
    s.text("public-key")
    s.text("client-id")
    s.done()
    return sdk.Client(f"{site}/{CODEBASE}/apis/3.0", headers={"accept": ACCEPT})


# ------------------------------------------------------------------------------------------------
# Mapping
# ------------------------------------------------------------------------------------------------


def _text(value):
    value = (value or "").strip() if isinstance(value, str) else value
    return value or None


def desired(record, account):
    """What the BSS says the company should be, flat (reference fields by id)."""
    address = account.billing_address or Address(None, None, None, None, None, None)
    fields = {
        "identifier": record.bss_id,
        "name": account.name,
        "accountNumber": _text(account.code),
        "addressLine1": _text(address.line1),
        "addressLine2": _text(address.line2),
        "city": _text(address.city),
        "state": _text(address.state),
        "zip": _text(address.zip),
        "phoneNumber": _text(account.phone),
        "faxNumber": _text(account.fax),
        "website": _text(account.website),
        "parentCompany": None,
    }
    if account.parent_account:
        parent = next((r for r in record.references if r.field == "parent-account"), None)
        if parent is None:
            raise sdk.missing_reference("parent-account", Entity.ACCOUNT, account.parent_account)
        fields["parentCompany"] = int(parent.remote_id)
    return fields


def type_id(account):
    """The company type the Account Type lookup maps the account's type to (None: no type)."""
    kind = _text(account.account_type)
    if kind is None:
        return None
    remote = wit_settings.lookup(ACCOUNT_TYPE, kind)
    if remote is None or not remote.strip().isdigit():
        raise sdk.rejected("account-type", f"{kind!r} is not mapped in lookup Account Type -> ConnectWise Type")
    return int(remote)


def not_written(account):
    """Warnings for what the BSS set that this template does not write."""
    left = [name for name, value in [
        ("currency", account.currency), ("status", account.status),
        ("billing-address/country", account.billing_address and account.billing_address.country),
        ("primary-contact", account.primary_contact), ("extra", account.extra),
    ] if value]
    return [f"not synchronised by this connector: {', '.join(left)}"] if left else []


def flat(company):
    """A company as the flat map `desired` makes."""
    out = {}
    for field in FIELDS:
        value = company.get(field)
        if field in REFERENCE_FIELDS:
            value = value.get("id") if isinstance(value, dict) else None
        out[field] = value
    return out


def wire(field, value):
    return {"id": value} if field in REFERENCE_FIELDS and value is not None else value


def to_pulled(company):
    """A company as a BSS account (what pull, fetch and `pushed.stored` answer)."""
    remote_id = company.get("id")
    stamp = (company.get("_info") or {}).get("lastUpdated")
    if not isinstance(remote_id, int) or not stamp:
        raise sdk.internal(f"a company without id or _info.lastUpdated: {str(company)[:200]}")
    warnings = []
    account_type = None
    types = company.get("types") or []
    if types:
        first = types[0]
        account_type = wit_settings.reverse_lookup(ACCOUNT_TYPE, str(first.get("id")))
        if account_type is None:
            warnings.append(f"company type {first.get('name')} (id {first.get('id')}) is not mapped "
                            "in lookup Account Type -> ConnectWise Type")
    s = lambda field: _text(company.get(field))  # noqa: E731
    country = (company.get("country") or {}).get("name")
    address = Address(s("addressLine1"), s("addressLine2"), s("city"), s("state"), s("zip"), country)
    has_address = any(vars(address).values())
    references = []
    parent = (company.get("parentCompany") or {}).get("id")
    if parent:
        references.append(RemoteReference("parent-account", Entity.ACCOUNT, str(parent)))
    account = Account(
        code=s("accountNumber") or s("identifier") or "",
        name=s("name") or "",
        account_type=account_type,
        status=(company.get("status") or {}).get("name"),
        currency=None,
        billing_address=address if has_address else None,
        phone=s("phoneNumber"),
        fax=s("faxNumber"),
        website=s("website"),
        parent_account=None,
        primary_contact=None,
        extra=[],
    )
    return PulledRecord(str(remote_id), stamp, EntityData_Account(account), references, warnings)


def renamed(err):
    """A rejection naming ConnectWise fields, naming the BSS's instead."""
    value = err.value
    if isinstance(value, sdk.types.ConnectorError_Rejected):
        return sdk.rejected([(FIELDS.get(f.field.split("/")[0], f.field), f.message) for f in value.value])
    return err


# ------------------------------------------------------------------------------------------------
# Push
# ------------------------------------------------------------------------------------------------


def pushed(change, remote_id, stored=None, overwritten=(), warnings=()):
    return Pushed(change, str(remote_id), list(overwritten), stored, list(warnings))


def holders(api, record, account):
    """Companies whose identifier is this record's BSS id and that carry its code (the pair a
    create by this connector writes)."""
    quoted = "'" + record.bss_id.replace("'", "''") + "'"
    found = api.get(COMPANIES, {"conditions": f"identifier={quoted}", "pageSize": 10})
    return [c for c in found if (c.get("accountNumber") or "").strip() == account.code.strip()]


def push_account(api, item, options):
    record = item.record
    if not isinstance(record.data, EntityData_Account):
        raise sdk.internal("an account push was handed a record that is not an account")
    account = record.data.value
    want = desired(record, account)
    kind = type_id(account)
    warnings = not_written(account)
    remote_id = record.remote_id
    if remote_id is None and record.maybe_created:
        found = holders(api, record, account)
        if len(found) > 1:
            raise sdk.rejected("bss-id", f"ambiguous: ConnectWise companies {[c['id'] for c in found]} may be this one")
        if found:
            remote_id = str(found[0]["id"])
    if remote_id is None:
        return create(api, record, account, want, kind, options, warnings)
    base = None
    last = item.last_pushed
    if last is not None and isinstance(last.data, EntityData_Account):
        try:
            base = desired(sdk.types.Record(record.entity, record.bss_id, remote_id, False, last.data,
                                            last.references), last.data.value)
        except sdk.Err:
            base = None  # the last push no longer maps: update without a base
        if _text(last.data.value.account_type) != _text(account.account_type):
            warnings.append("the company type is set only when the company is created")
    return update(api, remote_id, want, base, options, warnings)


def create(api, record, account, want, kind, options, warnings):
    body = {f: wire(f, v) for f, v in want.items() if v is not None}
    if kind is not None:
        body["types"] = [{"id": kind}]
    if options.dry_run:
        return pushed(Change.CREATED, "", warnings=warnings)
    try:
        company = api.post(COMPANIES, body)
    except sdk.Err as err:
        value = err.value
        in_use = isinstance(value, sdk.types.ConnectorError_Rejected) and any(
            f.field == "identifier" and "already in use" in f.message for f in value.value)
        if not in_use:
            raise
        # An earlier attempt may have made it: adopt it when it carries this record's code.
        found = holders(api, record, account)
        if len(found) != 1:
            raise sdk.rejected("bss-id", f"in use: a ConnectWise company already has identifier {record.bss_id} "
                               "and does not carry this account's code") from None
        return update(api, str(found[0]["id"]), want, None, options, warnings)
    return pushed(Change.CREATED, company["id"], stored=to_pulled(company), warnings=warnings)


def update(api, remote_id, want, base, options, warnings):
    if not remote_id.isdigit():
        raise sdk.rejected("remote-id", f"{remote_id!r} is not a ConnectWise company id")
    path = f"{COMPANIES}/{remote_id}"
    current = api.get(path)
    changes, conflicts, held = sdk.three_way(
        flat(current), want, base, options.conflicts == ConflictPolicy.REPORT)
    overwritten = [OverwrittenValue(FIELDS[f], "" if have is None else str(have),
                                    None if was is None else str(was)) for f, have, was in conflicts]
    if held:
        return pushed(Change.HELD, remote_id, overwritten=overwritten, warnings=warnings)
    if not changes:
        return pushed(Change.UNCHANGED, remote_id, stored=to_pulled(current), warnings=warnings)
    if options.dry_run:
        return pushed(Change.UPDATED, remote_id, overwritten=overwritten, warnings=warnings)
    operations = [
        {"op": "remove", "path": f} if v is None else {"op": "replace", "path": f, "value": wire(f, v)}
        for f, v in changes.items()
    ]
    after = api.patch(path, operations)
    return pushed(Change.UPDATED, remote_id, stored=to_pulled(after), overwritten=overwritten, warnings=warnings)


# ------------------------------------------------------------------------------------------------
# The export
# ------------------------------------------------------------------------------------------------


def only_accounts(entity, what):
    if entity != Entity.ACCOUNT:
        raise sdk.unsupported(f"{what} {entity.name.lower()} records is not supported: only accounts")


@sdk.guard
class Connector(exports.Connector):
    def manifest(self):
        return manifest()

    def activate(self):
        api = client()
        try:
            info = api.get("system/info")
        except sdk.Err as err:
            value = err.value
            if isinstance(value, sdk.types.ConnectorError_Unauthorized):
                key = "client-id" if "clientid" in value.value.lower() else "private-key"
                raise sdk.invalid_settings([(key, value.value)]) from None
            if isinstance(value, (sdk.types.ConnectorError_Transient, sdk.types.ConnectorError_NotFound)):
                raise sdk.invalid_settings([("url", f"no ConnectWise API at {api.base}: {sdk.describe(err)}")]) from None
            raise
        version = (info or {}).get("version", "unknown")
        return f"Connected to ConnectWise at {api.base} (version {version})"

    def lookup_choices(self, key):
        if key != COMPANY_TYPES:
            raise sdk.unsupported(f"no choices named {key!r}")
        api = client()
        return [
            Choice(value=str(t["id"]), label=t.get("name") or str(t["id"]))
            for t in api.pages_by_link(f"{COMPANIES}/types", {"pageSize": PAGE_SIZE})
            if not t.get("inactiveFlag")
        ]

    def push(self, entity, records, options):
        only_accounts(entity, "pushing")
        api = client()
        return sdk.each(records, lambda item: renamed_push(api, item, options))

    def pull(self, entity, since, page_token):
        only_accounts(entity, "pulling")
        api = client()
        query = {"pageSize": PAGE_SIZE}
        if since is not None:
            if not sdk.is_timestamp(since):
                raise sdk.internal(f"the cursor {since!r} is not an RFC 3339 timestamp")
            query["conditions"] = f"lastUpdated>=[{since}]"
        if page_token is not None:
            if not page_token.isdigit():
                raise sdk.internal(f"page token {page_token!r} is not one this connector gave")
            query["pageId"] = page_token
        companies, response = api.page(COMPANIES, query, headers={"pagination-type": "forward-only"})
        next_token = sdk.query_param(response.link("next"), "pageId")
        return PullPage([to_pulled(c) for c in companies], next_token)

    def fetch(self, entity, remote_id):
        only_accounts(entity, "fetching")
        if not remote_id.isdigit():
            raise sdk.rejected("remote-id", f"{remote_id!r} is not a ConnectWise company id")
        api = client()
        response = api.send("GET", f"{COMPANIES}/{remote_id}")
        if response.status == 404:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("code") == "NotFound":
                return None  # ConnectWise says it has no such company (any other 404 is an error)
        company = api.check(response)
        return None if company.get("deletedFlag") else to_pulled(company)

    def subscribe(self, url, entities):
        raise sdk.unsupported("this connector registers no callbacks; the host pulls on a schedule")

    def remove(self, entity, remote_ids, options):
        raise sdk.unsupported("this connector removes nothing in ConnectWise")


def renamed_push(api, item, options):
    try:
        return push_account(api, item, options)
    except sdk.Err as err:
        raise renamed(err) from None
