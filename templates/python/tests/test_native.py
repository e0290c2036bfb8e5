"""Runs the connector in plain CPython against a tiny fake ConnectWise, for a quick loop without
building the component (seconds instead of a build and a host). The bindings come from
`componentize-py bindings` (run.sh does it):

    templates/python/tests/run.sh
"""

import json
import re
import sys
import unittest
import urllib.parse

from componentize_py_types import Err, Ok
from wit_world.imports import http, log, settings
from wit_world.imports import types as t
from wit_world.exports import connector as c

import app
import bss_sdk as sdk

SETTINGS = {"url": "http://cw.test", "company-id": "acme", "public-key": "pub", "client-id": "x"}
LOOKUP = {"Customer": "1", "Reseller": "4"}


class FakeCW:
    """Just enough ConnectWise: companies (create, get, search by identifier, patch, forward-only
    paging), company types with Link paging, system/info, and faults by request number."""

    def __init__(self):
        self.companies = {}
        self.next_id = 250
        self.requests = []
        self.faults = {}  # request number -> (status, headers)

    def answer(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        return http.Response(status=status, headers=list(headers), body=data)

    def send(self, request):
        self.requests.append(request)
        fault = self.faults.get(len(self.requests))
        if fault:
            return self.answer(fault[0], {"code": "X", "message": "injected"}, fault[1])
        url = urllib.parse.urlsplit(request.url)
        path = url.path.split("/apis/3.0/", 1)[1]
        query = dict(urllib.parse.parse_qsl(url.query))
        method = request.method
        if path == "system/info":
            return self.answer(200, {"version": "v2026.4.1"})
        if path == "company/companies/types":
            page = int(query.get("page", "1"))
            types = [{"id": 1, "name": "Client"}, {"id": 2, "name": "Old", "inactiveFlag": True}] if page == 1 \
                else [{"id": 4, "name": "Partner"}]
            link = [("Link", f'<{request.url.split("?")[0]}?page=2>; rel="next"')] if page == 1 else []
            return self.answer(200, types, link)
        if path == "company/companies" and method == http.Method.POST:
            body = json.loads(request.body)
            if any(x["identifier"] == body["identifier"] for x in self.companies.values()):
                return self.answer(400, {"code": "InvalidObject", "message": "company object is invalid", "errors": [
                    {"code": "InvalidField", "message": f"The identifier '{body['identifier']}' is already in use by Company 1.",
                     "resource": "company", "field": "identifier"}]})
            if len(body["identifier"]) > 30:
                return self.answer(400, {"code": "InvalidObject", "message": "invalid", "errors": [
                    {"code": "MaxLengthField", "message": "identifier is too long", "resource": "company", "field": "identifier"}]})
            body["id"] = self.next_id
            self.next_id += 1
            body["_info"] = {"lastUpdated": "2026-01-01T00:00:00Z"}
            body["types"] = [{"id": x["id"], "name": "T"} for x in body.get("types", [])]
            self.companies[body["id"]] = body
            return self.answer(201, body)
        if path == "company/companies":
            found = sorted(self.companies.values(), key=lambda x: x["id"])
            m = re.match(r"identifier='(.*)'$", query.get("conditions", ""))
            if m:
                found = [x for x in found if x["identifier"] == m.group(1)]
            after = int(query.get("pageId", "0"))
            size = int(query.get("pageSize", "25"))
            found = [x for x in found if x["id"] > after]
            link = []
            if len(found) > size:
                base = re.sub(r"&pageId=\d+", "", request.url)
                link = [("Link", f'<{base}&pageId={found[size - 1]["id"]}>; rel="next"')]
            return self.answer(200, found[:size], link)
        m = re.match(r"company/companies/(\d+)$", path)
        if m:
            company = self.companies.get(int(m.group(1)))
            if company is None:
                return self.answer(404, {"code": "NotFound", "message": "not found"})
            if method == http.Method.PATCH:
                for op in json.loads(request.body):
                    if op["op"] == "remove":
                        company.pop(op["path"], None)
                    else:
                        company[op["path"]] = op["value"]
            return self.answer(200, company)
        return self.answer(404, {"code": "NotFound", "message": f"no route {path}"})


def account(code, name="Acme", **kw):
    return t.Account(code=code, name=name, account_type=kw.get("kind"), status=None, currency=None,
                     billing_address=t.Address("1 Main St", None, kw.get("city", "Austin"), None, None, None),
                     phone=kw.get("phone"), fax=None, website=None, parent_account=None, primary_contact=None,
                     extra=[])


def item(bss_id, data, remote_id=None, last=None, maybe=False):
    record = t.Record(t.Entity.ACCOUNT, bss_id, remote_id, maybe, t.EntityData_Account(data), [])
    return c.PushItem(record, None if last is None else c.LastPushed(t.EntityData_Account(last), []))


OPTIONS = c.PushOptions(dry_run=False, conflicts=c.ConflictPolicy.BSS_WINS)


class Test(unittest.TestCase):
    def setUp(self):
        self.cw = FakeCW()
        self.settings = dict(SETTINGS)
        http.send = self.cw.send
        settings.get = lambda key: self.settings.get(key)
        settings.lookup = lambda key, v: LOOKUP.get(v) if key == "account-type" else None
        settings.reverse_lookup = lambda key, r: {v: k for k, v in LOOKUP.items()}.get(r)
        log.write = lambda level, message: None
        self.c = app.Connector()

    def test_manifest_and_activate(self):
        m = self.c.manifest()
        self.assertEqual(m.name, "template-connector")
        self.assertIn("Connected to ConnectWise", self.c.activate())

    def test_every_missing_setting_in_one_error(self):
        self.settings = {"url": "ftp://x"}
        with self.assertRaises(Err) as caught:
            self.c.activate()
        error = caught.exception.value
        self.assertIsInstance(error, t.ConnectorError_InvalidSettings)
        self.assertEqual([f.field for f in error.value], ["url", "company-id", "public-key", "client-id"])

    def test_choices_follow_link_pages(self):
        self.assertEqual([(x.value, x.label) for x in self.c.lookup_choices("company-types")],
                         [("1", "Client"), ("4", "Partner")])

    def test_push_create_update_unchanged_and_held(self):
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1", kind="Customer"))], OPTIONS)
        self.assertIsInstance(out[0], Ok, out)
        self.assertEqual(out[0].value.change, c.Change.CREATED)
        rid = out[0].value.remote_id
        self.assertEqual(out[0].value.stored.data.value.account_type, "Customer")
        # unchanged
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1"), rid, account("C1"))], OPTIONS)
        self.assertEqual(out[0].value.change, c.Change.UNCHANGED)
        # staff change the phone in ConnectWise; the BSS did not: it stays
        self.cw.companies[int(rid)]["phoneNumber"] = "555"
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1", name="New"), rid, account("C1"))], OPTIONS)
        self.assertEqual(out[0].value.change, c.Change.UPDATED)
        self.assertEqual(self.cw.companies[int(rid)]["phoneNumber"], "555")
        self.assertEqual(self.cw.companies[int(rid)]["name"], "New")
        # both changed the city: held under report, overwritten under bss-wins
        self.cw.companies[int(rid)]["city"] = "Dallas"
        report = c.PushOptions(dry_run=False, conflicts=c.ConflictPolicy.REPORT)
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1", name="New", city="Houston"), rid,
                                                   account("C1", name="New"))], report)
        self.assertEqual(out[0].value.change, c.Change.HELD)
        self.assertEqual(out[0].value.overwritten[0].field, "billing-address/city")
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1", name="New", city="Houston"), rid,
                                                   account("C1", name="New"))], OPTIONS)
        self.assertEqual(out[0].value.change, c.Change.UPDATED)
        self.assertEqual(out[0].value.overwritten[0].remote_value, "Dallas")
        self.assertEqual(self.cw.companies[int(rid)]["city"], "Houston")

    def test_per_record_errors(self):
        out = self.c.push(t.Entity.ACCOUNT, [
            item("X" * 31, account("L")),
            item("A2", account("C2", kind="Nope")),
            item("A3", account("C3")),
        ], OPTIONS)
        self.assertEqual(out[0].value.value[0].field, "bss-id")
        self.assertEqual(out[1].value.value[0].field, "account-type")
        self.assertIsInstance(out[2], Ok)

    def test_statuses_map_to_errors_and_429_stops_the_call(self):
        self.cw.faults = {1: (500, []), 2: (429, [("Retry-After", "3")])}
        out = self.c.push(t.Entity.ACCOUNT, [item(f"B{i}", account(f"C{i}")) for i in range(4)], OPTIONS)
        self.assertIsInstance(out[0].value, t.ConnectorError_Transient)
        self.assertEqual(out[1].value, t.ConnectorError_RateLimited(3000))
        self.assertEqual(out[2].value, t.ConnectorError_RateLimited(3000))
        self.assertEqual(len(self.cw.requests), 2)

    def test_maybe_created_and_in_use_adopt_instead_of_duplicating(self):
        self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1"))], OPTIONS)
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1"), maybe=True)], OPTIONS)
        self.assertEqual(out[0].value.change, c.Change.UNCHANGED)
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1", name="B"))], OPTIONS)
        self.assertEqual(out[0].value.change, c.Change.UPDATED)
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("OTHER"))], OPTIONS)
        self.assertTrue(out[0].value.value[0].message.startswith("in use:"), out)
        self.assertEqual(len(self.cw.companies), 1)

    def test_pull_pages_and_fetch(self):
        self.c.push(t.Entity.ACCOUNT, [item(f"P{i}", account(f"C{i}")) for i in range(5)], OPTIONS)
        app.PAGE_SIZE = 2
        try:
            seen, token = [], None
            while True:
                page = self.c.pull(t.Entity.ACCOUNT, "2025-01-01T00:00:00Z", token)
                seen += [r.remote_id for r in page.records]
                token = page.next_page_token
                if token is None:
                    break
        finally:
            app.PAGE_SIZE = 1000
        self.assertEqual(seen, ["250", "251", "252", "253", "254"])
        self.assertEqual(self.c.fetch(t.Entity.ACCOUNT, "251").data.value.code, "C1")
        self.assertIsNone(self.c.fetch(t.Entity.ACCOUNT, "999"))
        with self.assertRaises(Err) as caught:
            self.c.pull(t.Entity.ACCOUNT, "2025-01-01T00:00:00Z] or [x", None)
        self.assertIsInstance(caught.exception.value, t.ConnectorError_Internal)

    def test_uncaught_exceptions_are_internal_with_the_stack(self):
        http.send = lambda request: 1 / 0
        with self.assertRaises(Err) as caught:
            self.c.activate()
        self.assertIsInstance(caught.exception.value, t.ConnectorError_Internal)
        self.assertIn("ZeroDivisionError", caught.exception.value.value)
        self.assertIn("Traceback", caught.exception.value.value)
        out = self.c.push(t.Entity.ACCOUNT, [item("A1", account("C1"))], OPTIONS)
        self.assertIn("ZeroDivisionError", out[0].value.value)

    def test_unsupported(self):
        for call in (lambda: self.c.subscribe("https://x", []), lambda: self.c.remove(t.Entity.ACCOUNT, [], OPTIONS),
                     lambda: self.c.pull(t.Entity.CONTACT, None, None)):
            with self.assertRaises(Err) as caught:
                call()
            self.assertIsInstance(caught.exception.value, t.ConnectorError_Unsupported)


if __name__ == "__main__":
    unittest.main()
