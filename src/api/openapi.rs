//! `/openapi.json`: generated from the handlers' annotations, then completed with what every
//! operation shares so that a client generated from it handles every real answer:
//! the statuses the gate, the extractors and the engine can return on any operation (401,
//! 403, 429 with `Retry-After`, 400, 404 on path ids, 408/413/415 on bodies, 503), a
//! description on every response, text fields that refuse control characters as the server
//! does, and nullable formatted fields that keep their format. Dev-only operations appear
//! only when the server runs with them.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::{ApiDoc, Features};

/// Text the server accepts: no control characters but line breaks and tabs, and at least one
/// character that is not white space (values are trimmed).
pub const TEXT_PATTERN: &str =
    r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$";

/// Optional text: the same characters, and blank reads as absent.
pub const OPTIONAL_TEXT_PATTERN: &str = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$";

/// Paths served only when a dev feature is on.
const TEST_CLOCK: &str = "/v1/test/clock";
const FAULTS: &str = "/v1/ops/faults";

/// HTTP methods an OpenAPI path item may hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The finished document for a server running with `features`.
pub fn document(features: Features) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        if !features.test_clock {
            paths.remove(TEST_CLOCK);
        }
        if !features.faults {
            paths.remove(FAULTS);
        }
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for method in METHODS {
                if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                    op.insert(
                        "operationId".into(),
                        Value::String(operation_id(method, path)),
                    );
                    complete_operation(path, op);
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            tighten(schema);
        }
        // Every 4xx/5xx body: `{"error": {"code", "message"}}`.
        schemas.insert(
            "ErrorEnvelope".into(),
            json!({
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}}
            }),
        );
    }
    doc
}

/// Unique and stable: `post_v1_orders_id_cancel`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_'),
        );
    }
    id
}

fn error_response(description: &str, retry_after: bool) -> Value {
    let mut r = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    });
    if retry_after {
        r["headers"] = json!({"Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 1}
        }});
    }
    r
}

/// Adds the statuses any such operation can answer, and descriptions where missing.
fn complete_operation(path: &str, op: &mut Map<String, Value>) {
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = op.contains_key("requestBody");
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let has_path_id = path.contains('{');
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    let mut add = |status: &str, description: &str, retry: bool| {
        let entry = responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description, retry));
        if let Some(r) = entry.as_object_mut() {
            if !r.contains_key("content") {
                r.insert(
                    "content".into(),
                    error_response(description, retry)["content"].clone(),
                );
            }
            if retry && !r.contains_key("headers") {
                r.insert(
                    "headers".into(),
                    error_response(description, retry)["headers"].clone(),
                );
            }
        }
    };
    if secured {
        add(
            "401",
            "unauthorized: missing, invalid or expired token, or an unregistered subject",
            false,
        );
        add(
            "403",
            "forbidden: this role or subject may not do that",
            false,
        );
        add(
            "429",
            "rate_limited: over the caller's rate; see Retry-After",
            true,
        );
    }
    if has_body || has_params || has_path_id {
        add(
            "400",
            "invalid_request: malformed JSON, a wrong type, an out-of-range value",
            false,
        );
    }
    if has_path_id {
        add("404", "not_found", false);
    }
    if has_body {
        add(
            "408",
            "request_timeout: the body did not arrive in time",
            false,
        );
        add("413", "payload_too_large", false);
        add(
            "415",
            "unsupported_media_type: the body must be JSON",
            false,
        );
    }
    if path.starts_with("/v1/") {
        add(
            "503",
            "overloaded or unavailable: try again after Retry-After",
            true,
        );
    }
    for (status, response) in responses.iter_mut() {
        if let Some(r) = response.as_object_mut()
            && !r.contains_key("description")
        {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("response");
            r.insert("description".into(), Value::String(reason.to_owned()));
        }
    }
}

/// Walks a schema: bounded text gets the server's text pattern; a nullable formatted value
/// (`["string", "null"]` + `date-time`) becomes `oneOf` so generators keep the format.
fn tighten(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for prop in props.values_mut() {
            nullable_format(prop);
            text_pattern(prop);
            tighten(prop);
        }
    }
    for key in ["items", "oneOf", "anyOf", "allOf"] {
        match obj.get_mut(key) {
            Some(Value::Array(list)) => list.iter_mut().for_each(tighten),
            Some(v @ Value::Object(_)) => tighten(v),
            _ => {}
        }
    }
}

fn text_pattern(prop: &mut Value) {
    let required = prop.get("type") == Some(&json!("string"));
    let optional = prop.get("type") == Some(&json!(["string", "null"]));
    let bounded = prop.get("maxLength").is_some()
        && prop.get("pattern").is_none()
        && prop.get("format").is_none();
    if bounded && required {
        prop["pattern"] = Value::String(TEXT_PATTERN.to_owned());
    } else if bounded && optional {
        prop["pattern"] = Value::String(OPTIONAL_TEXT_PATTERN.to_owned());
    }
}

fn nullable_format(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    let Some(Value::Array(types)) = obj.get("type") else {
        return;
    };
    if types.len() != 2 || !types.contains(&json!("null")) || !obj.contains_key("format") {
        return;
    }
    let Some(base) = types.iter().find(|t| *t != &json!("null")).cloned() else {
        return;
    };
    let mut inner = obj.clone();
    inner.insert("type".into(), base);
    inner.remove("description");
    let description = obj.get("description").cloned();
    obj.clear();
    obj.insert(
        "oneOf".into(),
        json!([Value::Object(inner), {"type": "null"}]),
    );
    if let Some(d) = description {
        obj.insert("description".into(), d);
    }
}

/// The methods the document declares for the route `path` matches, if any: a request with
/// another method is `405` with `Allow`, not `404`.
pub fn allowed_methods(doc: &Value, path: &str) -> Option<Vec<String>> {
    let paths = doc.get("paths")?.as_object()?;
    paths.iter().find_map(|(template, item)| {
        matches_template(template, path).then(|| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect()
        })
    })
}

fn matches_template(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    /// utoipa names a component after its type alone: two types of one name in different
    /// modules become one schema, and one endpoint documents the other's body (the restaurant
    /// status once documented the rider's). Every schema type's name must be unique.
    #[test]
    fn schema_type_names_are_unique() {
        fn scan(dir: &std::path::Path, names: &mut std::collections::HashMap<String, String>) {
            for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    scan(&path, names);
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let mut schema_next = false;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("#[derive(") && line.contains("ToSchema") {
                        schema_next = true;
                    } else if schema_next && !line.starts_with("#[") && !line.starts_with("///") {
                        let name = line
                            .trim_start_matches("pub ")
                            .trim_start_matches("struct ")
                            .trim_start_matches("enum ")
                            .split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let here = path.display().to_string();
                        if let Some(other) = names.insert(name.clone(), here.clone())
                            && other != here
                        {
                            panic!("schema type {name} is defined in {other} and {here}");
                        }
                        schema_next = false;
                    }
                }
            }
        }
        let mut names = std::collections::HashMap::new();
        scan(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut names,
        );
        assert!(
            names.contains_key("OrderView"),
            "the scan finds schema types"
        );
    }

    use super::*;

    #[test]
    fn every_response_is_described_and_secured_operations_document_401_and_429() {
        let doc = document(Features::default());
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                for (status, r) in op["responses"].as_object().unwrap() {
                    assert!(r.get("description").is_some(), "{method} {path} {status}");
                }
                if op.get("security").is_some() {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                    assert!(
                        op["responses"]["429"]["headers"]
                            .get("Retry-After")
                            .is_some()
                    );
                }
            }
        }
        assert!(doc["paths"].get(TEST_CLOCK).is_none());
        assert!(doc["paths"].get(FAULTS).is_none());
        let on = document(Features {
            test_clock: true,
            faults: true,
        });
        assert!(on["paths"].get(TEST_CLOCK).is_some());
    }

    #[test]
    fn methods_a_path_lacks_are_known() {
        let doc = document(Features::default());
        let allowed = allowed_methods(&doc, "/v1/orders/abc").unwrap();
        assert!(allowed.contains(&"GET".to_owned()) && allowed.contains(&"PATCH".to_owned()));
        assert!(allowed_methods(&doc, "/v1/nothing").is_none());
        assert!(allowed_methods(&doc, "/v1/orders//cancel").is_none());
    }

    #[test]
    fn the_text_pattern_matches_what_the_server_accepts() {
        // The server's rule, in `extract::text`; the pattern must say the same.
        let re = |s: &str| {
            let ok_char = |c: char| !c.is_control() || c == '\n' || c == '\t';
            s.chars().all(ok_char) && s.chars().any(|c| !c.is_whitespace() && !c.is_control())
        };
        for s in [
            "a",
            " a ",
            "a\nb",
            "\u{202e}x",
            "",
            " ",
            "a\u{1}",
            "\u{85}x",
            "\t",
        ] {
            assert_eq!(
                re(s),
                crate::api::extract::text("f", s, 200).is_ok(),
                "{s:?}"
            );
        }
    }
}
