//! RFC 9457 problem details, and the extractors that turn every malformed request into one.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::AuthError;
use crate::error::ErrorCode;
use crate::ledger::{AmountError, LedgerError};
use crate::store::StoreError;
use crate::writer::WriteError;

/// An error answer: a stable code and a human detail. 5xx details never carry internals.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    /// For rosters: every bad line and why (a problem-details extension member).
    pub lines: Vec<crate::earning::LineProblem>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// The stable code, also the last part of `type`, for clients that switch on it.
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    lines: &'a [crate::earning::LineProblem],
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            lines: Vec::new(),
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        ApiError::new(code, code.title())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ProblemBody {
            type_uri: self.code.type_uri(),
            title: self.code.title(),
            status: status.as_u16(),
            detail: &self.detail,
            code: self.code.code(),
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // The cause goes to the operator's log; the client learns only that it was on our side.
        tracing::error!(%error, "store error");
        if error.is_transient() {
            ApiError::bare(ErrorCode::Unavailable)
        } else {
            ApiError::bare(ErrorCode::Internal)
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match &error {
            WriteError::Overloaded => ApiError::bare(ErrorCode::Overloaded),
            WriteError::Unavailable => ApiError::bare(ErrorCode::Unavailable),
            WriteError::GroupSize => ApiError::new(ErrorCode::InvalidBody, error.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid => ApiError::bare(ErrorCode::Unauthorized),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        ApiError::new(ErrorCode::from(&error), error.to_string())
    }
}

impl From<AmountError> for ApiError {
    fn from(error: AmountError) -> Self {
        ApiError::new(ErrorCode::from(error), error.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        // A malformed id names nothing that exists.
        ApiError::bare(ErrorCode::NotFound)
    }
}

/// JSON body extractor whose rejections are problem+json with our codes.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::new(ErrorCode::InvalidBody, text),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::MalformedJson, text),
        JsonRejection::MissingJsonContentType(_) => ApiError::bare(ErrorCode::UnsupportedMediaType),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::bare(ErrorCode::BodyTooLarge)
        }
        _ => ApiError::new(ErrorCode::MalformedJson, text),
    }
}

impl From<crate::earning::DomainError> for ApiError {
    fn from(error: crate::earning::DomainError) -> Self {
        ApiError {
            code: error.code,
            detail: error.detail,
            lines: error.lines,
        }
    }
}
