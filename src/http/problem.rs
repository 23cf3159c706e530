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
