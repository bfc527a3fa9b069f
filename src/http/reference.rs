//! `GET /v1/reference`: the API reference as one HTML page, rendered on the server from the
//! very OpenAPI document served at `/v1/openapi.json` (so the two cannot disagree). No
//! script, no font or style from elsewhere: it works under the pages' content security
//! policy and without any outside network. Operations are grouped by tag, each with its
//! parameters, body and answers; every schema has its own anchor, linked from where it is
//! used.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::app::service::Service;

/// The page.
#[utoipa::path(get, path = "/v1/reference", tag = "service",
    responses((status = 200, description = "The API reference (HTML, rendered from this document)", content_type = "text/html")))]
pub async fn reference(State(service): State<Service>) -> Response {
    let doc = super::openapi::document(&service.settings.server.public_url);
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let mut response = Html(render(&doc)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::pages::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// HTML-escapes `text`.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Paragraphs of a description (blank-line separated), see [`inline`].
fn prose(text: &str) -> String {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", inline(p.trim())))
        .collect()
}

/// `text` escaped, its `code` spans as `<code>`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// An anchor-safe form of `name`.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The type of `schema` in a few words, `$ref`s as links to their schema.
fn type_of(schema: &Value) -> String {
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return format!("<a href=\"#schema-{}\">{}</a>", anchor(name), esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[key].as_array() {
            let parts: Vec<String> = options.iter().map(type_of).collect();
            return parts.join(if key == "allOf" { " and " } else { " or " });
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let words: Vec<String> = types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            other => {
                let format = schema["format"].as_str().map(|f| format!(" ({})", esc(f)));
                format!("{}{}", esc(other), format.unwrap_or_default())
            }
        })
        .collect();
    if words.is_empty() {
        "any".into()
    } else {
        words.join(" or ")
    }
}

/// Renders the whole page.
fn render(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let server = doc["servers"][0]["url"].as_str().unwrap_or("");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} {v} — API reference</title><style>{STYLE}</style></head><body>\
         <header><h1>{t} <small>{v}</small></h1><p>Base URL <code>{s}</code> · the same \
         document as JSON: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI {o}) · \
         the guide: docs/API.md</p></header><main>",
        t = esc(title),
        v = esc(version),
        s = esc(server),
        o = esc(doc["openapi"].as_str().unwrap_or("3.1")),
    );
    out.push_str(&prose(doc["info"]["description"].as_str().unwrap_or("")));
    let operations = operations(doc);
    out.push_str("<nav aria-label=\"Operations\"><h2>Operations</h2>");
    for (tag, description) in tags(doc, &operations) {
        let _ = write!(out, "<h3>{}</h3>{}<ul>", esc(&tag), prose(&description));
        for op in operations.iter().filter(|o| o.tag == tag) {
            let _ = write!(
                out,
                "<li><a href=\"#op-{}\"><code>{} {}</code></a> {}</li>",
                anchor(&op.id),
                op.method.to_uppercase(),
                esc(op.path),
                inline(op.summary())
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</nav>");
    for op in &operations {
        operation(&mut out, op);
    }
    schemas(&mut out, doc);
    out.push_str("</main></body></html>");
    out
}

/// One operation of the document.
struct Operation<'a> {
    id: String,
    tag: String,
    method: &'a str,
    path: &'a str,
    op: &'a Value,
}

impl Operation<'_> {
    fn summary(&self) -> &str {
        self.op["summary"]
            .as_str()
            .or_else(|| self.op["description"].as_str())
            .and_then(|d| d.split("\n\n").next())
            .unwrap_or("")
    }
}

/// Tags in the document's order, then any tag only `operations` name.
fn tags(doc: &Value, operations: &[Operation<'_>]) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["name"].as_str()?.to_string(),
                t["description"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect();
    for op in operations {
        if !tags.iter().any(|(t, _)| *t == op.tag) {
            tags.push((op.tag.clone(), String::new()));
        }
    }
    tags
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            found.push(Operation {
                id: op["operationId"]
                    .as_str()
                    .map_or_else(|| format!("{method}{path}"), String::from),
                tag: op["tags"][0].as_str().unwrap_or("other").to_string(),
                method,
                path,
                op,
            });
        }
    }
    found
}

fn operation(out: &mut String, op: &Operation<'_>) {
    let keyed = op.op["security"].as_array().is_some_and(|s| !s.is_empty());
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{}\"><h2><code>{} {}</code></h2><p class=\"meta\">{} · \
         operation id <code>{}</code></p>{}",
        anchor(&op.id),
        op.method.to_uppercase(),
        esc(op.path),
        if keyed {
            "API key (<code>Authorization: Bearer …</code>)"
        } else {
            "no key"
        },
        esc(&op.id),
        prose(op.op["description"].as_str().unwrap_or(""))
    );
    if let Some(parameters) = op.op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th>required</th>\
             <th>description</th></tr>",
        );
        for p in parameters {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                type_of(&p["schema"]),
                if p["required"] == true { "yes" } else { "no" },
                prose(p["description"].as_str().unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }
    if let Some(content) = op.op["requestBody"]["content"].as_object() {
        out.push_str("<h3>Body</h3><ul>");
        for (media, body) in content {
            let _ = write!(
                out,
                "<li><code>{}</code>: {}</li>",
                esc(media),
                type_of(&body["schema"])
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<h3>Answers</h3><table><tr><th>status</th><th>meaning</th><th>body</th></tr>");
    for (status, answer) in op.op["responses"].as_object().into_iter().flatten() {
        let bodies: Vec<String> = answer["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media, c)| format!("<code>{}</code> {}", esc(media), type_of(&c["schema"])))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(status),
            esc(answer["description"].as_str().unwrap_or("")),
            bodies.join("<br>")
        );
    }
    out.push_str("</table></section>");
}

fn schemas(out: &mut String, doc: &Value) {
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            out,
            "<section class=\"schema\" id=\"schema-{}\"><h3>{}</h3>{}",
            anchor(name),
            esc(name),
            prose(schema["description"].as_str().unwrap_or(""))
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match schema["properties"].as_object() {
            Some(properties) => {
                out.push_str(
                    "<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>",
                );
                for (field, property) in properties {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        type_of(property),
                        if required.contains(&field.as_str()) {
                            "yes"
                        } else {
                            "no"
                        },
                        prose(property["description"].as_str().unwrap_or(""))
                    );
                }
                out.push_str("</table>");
            }
            None => {
                let _ = write!(out, "<p>{}</p>", type_of(schema));
            }
        }
        out.push_str("</section>");
    }
}

/// The page's own style: system fonts, readable tables, usable at 320 px.
const STYLE: &str = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
line-height:1.5;color:#1b1b1b;background:#f3f4f6}header{background:#0a3a8c;color:#fff;padding:1rem 1.25rem}\
header a{color:#fff}header code{background:#0d4aa8}main{max-width:62rem;margin:1rem auto;padding:0 1.25rem 2rem}\
h1 small{font-weight:400;font-size:.6em}section{background:#fff;border:1px solid #d0d4da;border-radius:6px;\
padding:.5rem 1rem;margin:1rem 0;overflow-x:auto}h2 code{font-size:1rem}.meta{color:#555;font-size:.9rem}\
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{border-top:1px solid #e3e6ea;\
padding:.3rem .5rem;text-align:left;vertical-align:top}td p{margin:0}code{background:#eef1f5;\
padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}a{color:#0a3a8c}nav ul{padding-left:1.2rem}";
