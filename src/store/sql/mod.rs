//! The SQL both backends run with the same text, written once.
//!
//! SQLite and PostgreSQL agree on every cold-path statement but a few (list lookups, two audit
//! aggregates, how a transaction takes its locks). What differs is types: SQLite keeps UUIDs as
//! hyphenated text where PostgreSQL has `uuid`, which [`Id`] binds and reads on either, and
//! flags as integers, which sqlx's SQLite driver reads as `bool`. Placeholders are the same too:
//! sqlx's SQLite driver maps `$N` to the N-th bound value, as PostgreSQL does.
//!
//! Each contract's shared part is a `macro_rules!` body expanded once per backend against its
//! concrete pool (`sqlx::Pool<sqlx::Sqlite>`, `sqlx::Pool<sqlx::Postgres>`): each expansion is
//! compiled and checked against its own driver, so there is no `sqlx::Any` and no generic
//! bounds to spell. Row structs derive `FromRow` for any row type and stay private to the store.
//! What differs stays native in the backend's folder, as associated functions of its store
//! that the expansions call by name (listed at each macro).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

pub(crate) mod earning;
pub(crate) mod ledger;
pub(crate) mod owner;
pub(crate) mod redeem;
pub(crate) mod session;

/// A UUID column: lowercase hyphenated text on SQLite (how every id has been stored there),
/// `uuid` on PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Id(pub(crate) Uuid);

impl Type<Sqlite> for Id {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <uuid::fmt::Hyphenated as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Id {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        <uuid::fmt::Hyphenated as Encode<'q, Sqlite>>::encode(self.0.hyphenated(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Id {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Id(<uuid::fmt::Hyphenated as Decode<'r, Sqlite>>::decode(
            value,
        )?
        .into_uuid()))
    }
}

impl Type<Postgres> for Id {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for Id {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Id {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Id(<Uuid as Decode<'r, Postgres>>::decode(value)?))
    }
}

/// The UUID of an optional id column.
pub(crate) fn opt(id: Option<Id>) -> Option<Uuid> {
    id.map(|id| id.0)
}
