//! RFC 9457 problem details: how the HTTP edge answers an [`Error`], and the extractors that
//! turn every malformed request into one.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::error::Error;
use crate::error::{ErrorCode, Fields, LineProblem};

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// The stable code, also the last part of `type`, for clients that switch on it.
    code: &'a str,
    #[serde(flatten)]
    fields: &'a Fields,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    lines: &'a [LineProblem],
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ProblemBody {
            type_uri: self.code.type_uri(),
            title: self.code.title(),
            status: status.as_u16(),
            detail: &self.detail,
            code: self.code.code(),
            fields: &self.fields,
            lines: &self.lines,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, json).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::new(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl From<PathRejection> for Error {
    fn from(_: PathRejection) -> Self {
        // A malformed id names nothing that exists.
        Error::bare(ErrorCode::NotFound)
    }
}

/// JSON body extractor whose rejections are problem+json with our codes.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => Error::new(ErrorCode::InvalidBody, text),
        JsonRejection::JsonSyntaxError(_) => Error::new(ErrorCode::MalformedJson, text),
        JsonRejection::MissingJsonContentType(_) => Error::bare(ErrorCode::UnsupportedMediaType),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::bare(ErrorCode::BodyTooLarge)
        }
        _ => Error::new(ErrorCode::MalformedJson, text),
    }
}

/// The most of a non-problem error body kept as the detail of the problem that replaces it.
const FOREIGN_DETAIL_MAX_BYTES: usize = 1024;

/// The last layer: any error answer that is not problem+json (a rejection written by an
/// extractor or a layer aixin does not own, such as a body limit met while reading raw bytes)
/// is rewritten as problem+json with the code its status stands for, so that every answer
/// aixin writes has one shape. What hyper refuses before the router (a malformed request line,
/// headers over its limits) never reaches this layer.
pub async fn problems_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // The pages' own error pages (an unknown path outside the API) stay HTML.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    if status.is_server_error() {
        return Error::bare(code).into_response();
    }
    let body = axum::body::to_bytes(response.into_body(), FOREIGN_DETAIL_MAX_BYTES)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).trim().to_owned();
    if detail.is_empty() {
        Error::bare(code).into_response()
    } else {
        Error::new(code, detail).into_response()
    }
}

/// Reads a JSON object into a map, refusing a key that appears twice (serde keeps the last one,
/// which would let a body say two things and mean one).
pub fn unique_keys<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = std::collections::BTreeMap<String, String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of strings with no key twice")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = std::collections::BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique)
}

/// The shape of every error answer, for the OpenAPI document (`application/problem+json`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// `urn:aixin:problem:<code>`.
    #[schema(example = "urn:aixin:problem:insufficient_balance")]
    r#type: String,
    title: String,
    status: u16,
    detail: String,
    /// The stable code (`ledger-specs/errors.md`).
    code: String,
    /// Structured facts of the refusal, where it has them (see `ledger-specs/errors.md`).
    #[schema(nullable = false)]
    unit: Option<String>,
    #[schema(nullable = false)]
    balance: Option<String>,
    #[schema(nullable = false)]
    needed: Option<String>,
    #[schema(nullable = false)]
    shortfall: Option<String>,
    #[schema(nullable = false)]
    sku: Option<String>,
    #[schema(nullable = false)]
    item: Option<String>,
    #[schema(nullable = false)]
    available: Option<String>,
    #[schema(nullable = false)]
    used: Option<String>,
    #[schema(nullable = false)]
    limit: Option<String>,
    #[schema(nullable = false)]
    field: Option<String>,
    /// For `foreign_payment_code`: `wechat`, `alipay` or `unionpay`.
    #[schema(nullable = false)]
    app: Option<String>,
    /// For `too_many_attempts`: seconds until one more attempt is counted.
    #[schema(nullable = false)]
    retry_after: Option<u64>,
    /// For rosters: every bad line.
    #[schema(nullable = false)]
    lines: Option<Vec<LineProblemSchema>>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = LineProblem)]
#[allow(dead_code)]
pub struct LineProblemSchema {
    line: u32,
    code: String,
    detail: String,
}

/// Completes a generated document so it is true of every operation: the `Idempotency-Key`
/// header on each operation that needs one, and the error answers every operation can give
/// (authentication, permission, not found, a bad query or path, the service unavailable; for a
/// body also a malformed, unsupported, too large or invalid one), each as problem+json.
pub fn complete_document(doc: &mut utoipa::openapi::OpenApi, keyed: &[(&str, &str)]) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    use utoipa::PartialSchema;

    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("Problem".to_owned(), <Problem as PartialSchema>::schema());
    components.schemas.insert(
        "LineProblem".to_owned(),
        <LineProblemSchema as PartialSchema>::schema(),
    );
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let is_keyed = keyed.iter().any(|(m, p)| *m == method && p == path);
            if is_keyed {
                // One declaration, with the key's real constraints, replaces any written at the
                // operation.
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                parameters.retain(|p| p.name != "Idempotency-Key");
                parameters.push(idempotency_header());
            }
            for (status, description) in error_answers(operation, is_keyed) {
                let entry = operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description).into());
                if let utoipa::openapi::RefOr::T(response) = entry {
                    if response.content.is_empty() {
                        *response = problem(&response.description.clone());
                    }
                }
            }
            // Every error answer is problem+json, whatever an annotation wrote for its body.
            for (status, entry) in operation.responses.responses.iter_mut() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                if let utoipa::openapi::RefOr::T(response) = entry {
                    *response = problem(&response.description.clone());
                }
            }
        }
    }
}

/// The error answers an operation can give, by what it takes.
fn error_answers(
    operation: &utoipa::openapi::path::Operation,
    is_keyed: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut errors = vec![
        ("400", "The query, a path segment or a header is not valid"),
        ("404", "Not found, or not visible to the caller"),
        ("405", "Method not allowed"),
        ("500", "Internal error"),
        (
            "503",
            "Unavailable or overloaded; retry (with the same Idempotency-Key)",
        ),
    ];
    if operation.security.is_some() {
        errors.push(("401", "A valid bearer token is required"));
        errors.push(("403", "This role may not do this"));
    }
    let has_query = operation.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
    });
    if has_query {
        errors.push((
            "422",
            "A query parameter names a date or range that is not valid here",
        ));
    }
    if operation.request_body.is_some() {
        errors.push(("413", "The body is larger than this endpoint accepts"));
        errors.push(("415", "The body is not of a type this endpoint takes"));
        errors.push(("422", "The body is not valid for this endpoint"));
    }
    if is_keyed {
        errors.push((
            "422",
            "The body is not valid, or the key was used for another request",
        ));
    }
    errors
}

/// The `Idempotency-Key` header as the API reads it.
fn idempotency_header() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::Required;
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(
            "Client-chosen key, 1 to 128 printable ASCII characters; a retry with the same key and body answers the first result",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}
