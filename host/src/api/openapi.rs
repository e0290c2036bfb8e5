//! The OpenAPI 3.0 description of the admin API, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, body: Option<Value>) -> Value {
    let mut operation = json!({
        "summary": summary,
        "security": [{ "bearer": [] }],
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": {} } } },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Forbidden" },
            "404": { "$ref": "#/components/responses/Error" },
            "409": { "$ref": "#/components/responses/Error" },
            "500": { "$ref": "#/components/responses/Error" },
            "503": { "$ref": "#/components/responses/Error" }
        }
    });
    if let Some(schema) = body {
        operation["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    operation
}

/// A sync run's route: 409 when another run of the instance and entity holds its lease (or
/// the instance is disabled, or the entity's sync is not enabled), 422 when the run happened but
/// not every record succeeded (the body is the report), 502 when the remote failed the run.
fn run_op(summary: &str, body: Option<Value>) -> Value {
    let mut operation = op(summary, body);
    operation["responses"]["422"] = json!({ "description": "The run happened; some records failed, were invalid or wait in the retry queue (the report says which)", "content": { "application/json": { "schema": {} } } });
    operation["responses"]["502"] = json!({ "$ref": "#/components/responses/Error" });
    operation
}

fn name_param() -> Value {
    json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } })
}

pub fn document() -> Value {
    let string_map = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let mut document = json!({
        "openapi": "3.0.3",
        "info": { "title": "bss-host admin API", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": "/api/v1" }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Forbidden": {
                    "description": "The token's role may not do this (viewer reads; operator also runs syncs; admin also changes the setup)",
                    "content": { "application/json": { "schema": { "type": "object" } } }
                },
                "Error": {
                    "description": "What went wrong, with per-key problems for bad input",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": {
                            "error": { "type": "string" },
                            "problems": { "type": "array", "items": { "type": "array", "items": { "type": "string" } } }
                        }
                    } } }
                }
            }
        },
        "paths": {
            "/connectors": { "get": op("Loaded connector versions (name, version, contract, hash, source, load time, withdrawn, manifest) and refused files with reasons", None) },
            "/connectors/{name}/rollback": {
                "parameters": [name_param()],
                "post": op("Withdraw the newest version: instances following the newest go back to the one before", None)
            },
            "/connectors/{name}/restore/{version}": {
                "parameters": [name_param(), { "name": "version", "in": "path", "required": true, "schema": { "type": "string" } }],
                "post": op("Put a withdrawn version back in service", None)
            },
            "/trust": {
                "get": op("The trust list: keys whose signed connectors load, each with the connector names it may sign; whether unsigned connectors are allowed", None),
                "post": op("Trust a key for some connector names (admin)", Some(json!({
                    "type": "object", "required": ["name", "public-key"], "additionalProperties": false,
                    "properties": { "name": { "type": "string" }, "public-key": { "type": "string", "description": "ed25519:BASE64" }, "connectors": { "type": "string", "description": "comma-separated patterns, * for any run of characters; default *" } }
                })))
            },
            "/trust/{name}": {
                "parameters": [name_param()],
                "delete": op("Stop trusting a key: files it signed are refused from the next load on; the answer lists the loaded versions it signed, which keep serving until rolled back", None)
            },
            "/audit": {
                "get": {
                    "summary": "The audit log, oldest first (admin): loads, refusals, trust and settings changes, rollbacks and restores, with who did each",
                    "security": [{ "bearer": [] }],
                    "parameters": [
                        { "name": "after", "in": "query", "required": false, "schema": { "type": "integer" } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "maximum": 1000 } }
                    ],
                    "responses": op("", None)["responses"].clone()
                }
            },
            "/instances": {
                "get": op("Instances", None),
                "post": op("Activate a connector as a new instance", Some(json!({
                    "type": "object", "required": ["connector", "name"], "additionalProperties": false,
                    "properties": { "connector": { "type": "string" }, "name": { "type": "string" }, "version": { "type": "string" }, "installation": { "type": "string" } }
                })))
            },
            "/instances/{name}": {
                "parameters": [name_param()],
                "get": op("One instance with its last check", None),
                "delete": op("Delete an instance (add ?confirm=true)", None)
            },
            "/instances/{name}/enable": { "parameters": [name_param()], "post": op("Enable", None) },
            "/instances/{name}/disable": { "parameters": [name_param()], "post": op("Disable: keep, but refuse syncs", None) },
            "/instances/{name}/check": { "parameters": [name_param()], "post": op("Run the connector's check against the remote", None) },
            "/instances/{name}/settings": {
                "parameters": [name_param()],
                "get": op("Settings, secrets masked", None),
                "patch": op("Set settings (an empty value clears); runs the check once complete", Some(string_map))
            },
            "/instances/{name}/lookups": { "parameters": [name_param()], "get": op("Lookup tables", None) },
            "/instances/{name}/lookups/{lookup}": {
                "parameters": [name_param(), { "name": "lookup", "in": "path", "required": true, "schema": { "type": "string" } }],
                "put": op("Map BSS values to remote values offered by the connector", Some(json!({
                    "type": "object", "required": ["mappings"], "additionalProperties": false,
                    "properties": { "mappings": { "type": "object", "additionalProperties": { "type": "string" } }, "pull_default": { "type": "string" } }
                })))
            },
            "/instances/{name}/lookups/{lookup}/choices": {
                "parameters": [name_param(), { "name": "lookup", "in": "path", "required": true, "schema": { "type": "string" } }],
                "get": op("Remote values the connector offers", None)
            },
            "/instances/{name}/sync-options": {
                "parameters": [name_param()],
                "get": op("Sync options", None),
                "put": op("Set sync options (ENTITY:DIRECTION:OPERATIONS)", Some(json!({
                    "type": "object", "required": ["options"], "additionalProperties": false,
                    "properties": { "options": { "type": "array", "items": { "type": "string" } } }
                })))
            },
            "/instances/{name}/push/{entity}": {
                "parameters": [name_param(), { "name": "entity", "in": "path", "required": true, "schema": { "type": "string" } },
                               { "name": "dry_run", "in": "query", "schema": { "type": "boolean" } }],
                "post": run_op("Push canonical records (a JSON array or NDJSON body); returns the run's report and the runs that sent queued records waiting for what it created", Some(json!({ "type": "array", "items": { "type": "object" } })))
            },
            "/instances/{name}/jobs/push/{entity}": {
                "parameters": [name_param(), { "name": "entity", "in": "path", "required": true, "schema": { "type": "string" } },
                               { "name": "dry_run", "in": "query", "schema": { "type": "boolean" } }],
                "post": {
                    "summary": "Queue a push (a JSON array or NDJSON body) for whichever worker is free; 202 with the job's address (Location), which says its state and, once done, its run's report",
                    "security": [{ "bearer": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object" } } } } },
                    "responses": {
                        "202": { "description": "Queued", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "400": { "$ref": "#/components/responses/Error" },
                        "401": { "$ref": "#/components/responses/Error" },
                        "403": { "$ref": "#/components/responses/Forbidden" },
                        "404": { "$ref": "#/components/responses/Error" },
                        "503": { "$ref": "#/components/responses/Error" }
                    }
                }
            },
            "/jobs": {
                "parameters": [{ "name": "instance", "in": "query", "schema": { "type": "string" } },
                               { "name": "limit", "in": "query", "schema": { "type": "integer" } }],
                "get": op("The newest jobs (of one instance), newest first", None)
            },
            "/jobs/{job}": {
                "parameters": [{ "name": "job", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "get": op("One job: queued, running (on which worker), done (with its run's report) or failed (with why)", None),
                "delete": op("Cancel a queued job (409 when it is running or ended)", None)
            },
            "/instances/{name}/pull/{entity}": {
                "parameters": [name_param(), { "name": "entity", "in": "path", "required": true, "schema": { "type": "string" } },
                               { "name": "since", "in": "query", "schema": { "type": "string" } },
                               { "name": "include_echoes", "in": "query", "schema": { "type": "boolean" } },
                               { "name": "feed", "in": "query", "schema": { "type": "boolean" }, "description": "also append the records to the change feed" }],
                "post": run_op("Pull records changed since the cursor; moves the cursor. Records equal to how the remote stored this instance's own last push are echoes: counted, not returned unless include_echoes", None)
            },
            "/instances/{name}/retry": { "parameters": [name_param()], "post": run_op("Retry the queue", None) },
            "/instances/{name}/link/{entity}": {
                "parameters": [name_param(), { "name": "entity", "in": "path", "required": true, "schema": { "type": "string" } }],
                "post": run_op("Link a BSS record to an existing remote record after checking it exists (the record comes from the retry queue, or `record`)", Some(json!({
                    "type": "object", "required": ["bss_id", "remote_id"], "additionalProperties": false,
                    "properties": { "bss_id": { "type": "string" }, "remote_id": { "type": "string" }, "record": { "type": "object" } }
                })))
            },
            "/instances/{name}/retry-queue": { "parameters": [name_param()], "get": op("The retry queue", None) },
            "/instances/{name}/runs": { "parameters": [name_param()], "get": op("Run history", None) },
            "/runs/{run}": {
                "parameters": [{ "name": "run", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "get": op("One run with each record's outcome", None)
            },
            "/openapi.json": { "get": { "summary": "This document (no token needed)", "responses": { "200": { "description": "OK" } } } }
        }
    });
    // In a second object: one json! of every path exceeds the macro's recursion limit.
    for more in [unattended_paths(), callback_paths()] {
        if let (Some(paths), Value::Object(more)) = (document["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    document
}

/// Callbacks, reconciling passes and removals. The hook itself (`POST /hooks/{instance}/{token}`)
/// is outside `/api/v1` and is ConnectWise's to call, so it is described in the README instead.
fn callback_paths() -> Value {
    let entity_param =
        json!({ "name": "entity", "in": "path", "required": true, "schema": { "type": "string" } });
    json!({
            "/instances/{name}/callbacks": {
                "parameters": [name_param()],
                "get": op("The instance's callback hook (its URL with the token masked), the remote's registrations, event counts", None),
                "put": op("Subscribe to the remote's callbacks (again: change the entities; the token is kept)", Some(json!({
                    "type": "object", "required": ["public-url"], "additionalProperties": false,
                    "properties": {
                        "public-url": { "type": "string", "description": "the base URL the remote reaches serve at" },
                        "entities": { "type": "array", "items": { "type": "string" }, "description": "default: every entity the instance pulls" }
                    }
                }))),
                "delete": op("Remove the remote's callbacks and forget the hook", None)
            },
            "/instances/{name}/callbacks/events": {
                "parameters": [name_param(), { "name": "limit", "in": "query", "schema": { "type": "integer" } }],
                "get": op("The newest callback events with their state and outcome", None)
            },
            "/instances/{name}/reconcile/{entity}": {
                "parameters": [name_param(), entity_param.clone()],
                "post": run_op("Read every remote id and report linked records deleted remotely to the feed (needs pull with delete)", None)
            },
            "/instances/{name}/remove/{entity}": {
                "parameters": [name_param(), entity_param],
                "post": run_op("Delete or deactivate the remote records of BSS ids the BSS deleted (needs push with delete)", Some(json!({
                    "type": "object", "required": ["bss-ids"], "additionalProperties": false,
                    "properties": {
                        "bss-ids": { "type": "array", "items": { "type": "string" } },
                        "dry-run": { "type": "boolean" }
                    }
                })))
            }
    })
}

/// Schedules, the change feed and health.
fn unattended_paths() -> Value {
    json!({
            "/health": { "get": op("The unattended host: schedules behind or blocked, stuck runs, feed backlog and callback errors per instance; status ok or degraded", None) },
            "/schedules": { "get": op("Every schedule with its state, next and last run", None) },
            "/schedules/run-due": { "post": run_op("Run every due schedule once (what serve does each second)", None) },
            "/instances/{name}/schedules": { "parameters": [name_param()], "get": op("The instance's schedules", None) },
            "/instances/{name}/schedules/{target}": {
                "parameters": [name_param(), { "name": "target", "in": "path", "required": true, "schema": { "type": "string" }, "description": "ENTITY:JOB, such as contact:pull, account:retry or account:reconcile" }],
                "put": op("Create or replace a schedule", Some(json!({
                    "type": "object", "required": ["cadence"], "additionalProperties": false,
                    "properties": { "cadence": { "type": "string", "description": "every 30s|5m|2h|1d, or daily HH:MM (UTC)" } }
                }))),
                "delete": op("Remove a schedule", None)
            },
            "/instances/{name}/feed": {
                "parameters": [name_param(),
                               { "name": "after", "in": "query", "schema": { "type": "integer" }, "description": "entries after this sequence number (default: after the acknowledged one)" },
                               { "name": "limit", "in": "query", "schema": { "type": "integer" } }],
                "get": op("Change-feed entries in order (JSON page, or NDJSON with Accept: application/x-ndjson)", None)
            },
            "/instances/{name}/feed/ack": {
                "parameters": [name_param()],
                "post": op("Acknowledge feed entries up to a sequence number", Some(json!({
                    "type": "object", "required": ["upto"], "additionalProperties": false,
                    "properties": { "upto": { "type": "integer" } }
                })))
            }
    })
}
