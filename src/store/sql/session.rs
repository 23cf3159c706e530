//! [`SessionStore`](crate::store::session::SessionStore) on both backends: every statement is the
//! same on SQLite and PostgreSQL, so the whole implementation is written once. Lists are sorted
//! here, not by the database (collations differ between backends).

use super::{opt, Id};
use crate::store::session::{DeviceRecord, LinkRecord, SessionLookup, SessionRecord, UserRecord};
use crate::store::{hash32, StoreError, TokenRecord};

/// Implements [`SessionStore`](crate::store::session::SessionStore) for `$store` (with a field
/// `pool: sqlx::Pool<$db>`). The store provides `begin_write(&Pool) -> Transaction`, the
/// transaction a write of several statements runs in. The callers run the writes of several
/// statements as their own task (a dropped request must not cut one off between `BEGIN` and
/// `COMMIT`).
macro_rules! session_store {
    ($store:ident, $db:ty) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::store::redeem::ShopStaff;
            use $crate::store::session::{
                Counted, DeviceRecord, LinkRecord, SessionLookup, SessionRecord, SessionStore,
                UserRecord,
            };
            use $crate::store::sql::ledger::{token_from, TokenRow};
            use $crate::store::sql::session::*;
            use $crate::store::sql::Id;
            use $crate::store::{parse_uuid, StoreError, TokenRecord};

            #[async_trait::async_trait]
            impl SessionStore for $store {
                async fn insert_user(
                    &self,
                    user: &UserRecord,
                    token: &TokenRecord,
                    link: &LinkRecord,
                ) -> Result<bool, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let taken: Option<Id> = sqlx::query_scalar(
                        "SELECT id FROM users WHERE ledger_id = $1 AND name = $2",
                    )
                    .bind(&user.ledger_id)
                    .bind(&user.name)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if taken.is_some() {
                        return Ok(false);
                    }
                    sqlx::query(
                        "INSERT INTO api_tokens (id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(Id(token.id))
                    .bind(&token.ledger_id)
                    .bind(token.token_hash.as_slice())
                    .bind(&token.role)
                    .bind(&token.scope)
                    .bind(&token.label)
                    .bind(token.created_at_micros)
                    .bind(token.expires_at_micros)
                    .bind(token.revoked_at_micros)
                    .execute(&mut *tx)
                    .await?;
                    let inserted = sqlx::query(
                        "INSERT INTO users (ledger_id, id, role, scope, name, token_id, password_hash, created_at, disabled_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    )
                    .bind(&user.ledger_id)
                    .bind(Id(user.id))
                    .bind(&user.role)
                    .bind(&user.scope)
                    .bind(&user.name)
                    .bind(Id(user.token_id))
                    .bind(&user.password_hash)
                    .bind(user.created_at_micros)
                    .bind(user.disabled_at_micros)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if !inserted {
                        return Ok(false);
                    }
                    Self::insert_link_in(&mut *tx, link).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn user(&self, ledger_id: &str, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
                    let row: Option<UserRow> = sqlx::query_as(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE ledger_id = $1 AND id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(user_from))
                }

                async fn user_by_name(
                    &self,
                    ledger_id: &str,
                    name: &str,
                ) -> Result<Option<UserRecord>, StoreError> {
                    let row: Option<UserRow> = sqlx::query_as(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE ledger_id = $1 AND name = $2"
                    ))
                    .bind(ledger_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(user_from))
                }

                async fn users(&self, ledger_id: &str) -> Result<Vec<UserRecord>, StoreError> {
                    let rows: Vec<UserRow> = sqlx::query_as(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE ledger_id = $1"
                    ))
                    .bind(ledger_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut users: Vec<UserRecord> = rows.into_iter().map(user_from).collect();
                    users.sort_by(|a, b| a.name.cmp(&b.name));
                    Ok(users)
                }

                async fn set_password_by_link(
                    &self,
                    ledger_id: &str,
                    link_hash: &[u8; 32],
                    password_hash: &str,
                    now_micros: i64,
                ) -> Result<Option<UserRecord>, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let Some(link) =
                        Self::use_link_in(&mut *tx, ledger_id, link_hash, "set_password", now_micros).await?
                    else {
                        return Ok(None);
                    };
                    let user_id = parse_uuid(&link.subject)?;
                    let row: Option<UserRow> = sqlx::query_as(&format!(
                        "UPDATE users SET password_hash = $3 WHERE ledger_id = $1 AND id = $2
                         RETURNING {USER_COLUMNS}"
                    ))
                    .bind(ledger_id)
                    .bind(Id(user_id))
                    .bind(password_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(user) = row.map(user_from) else {
                        return Ok(None);
                    };
                    Self::revoke_sessions_in(&mut *tx, ledger_id, user.token_id, now_micros).await?;
                    tx.commit().await?;
                    Ok(Some(user))
                }

                async fn disable_user(
                    &self,
                    ledger_id: &str,
                    id: Uuid,
                    now_micros: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let token: Option<Id> = sqlx::query_scalar(
                        "UPDATE users SET disabled_at = coalesce(disabled_at, $3) WHERE ledger_id = $1 AND id = $2
                         RETURNING token_id",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
                    .bind(now_micros)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(token) = token else {
                        return Ok(false);
                    };
                    Self::revoke_sessions_in(&mut *tx, ledger_id, token.0, now_micros).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn token(&self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
                    let row: Option<TokenRow> = sqlx::query_as(
                        "SELECT id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at
                         FROM api_tokens WHERE id = $1",
                    )
                    .bind(Id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(token_from).transpose()
                }

                async fn ensure_token(&self, token: &TokenRecord) -> Result<TokenRecord, StoreError> {
                    sqlx::query(
                        "INSERT INTO api_tokens (id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(Id(token.id))
                    .bind(&token.ledger_id)
                    .bind(token.token_hash.as_slice())
                    .bind(&token.role)
                    .bind(&token.scope)
                    .bind(&token.label)
                    .bind(token.created_at_micros)
                    .bind(token.expires_at_micros)
                    .bind(token.revoked_at_micros)
                    .execute(&self.pool)
                    .await?;
                    self.token(token.id)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("token vanished".to_owned()))
                }

                async fn insert_link(&self, link: &LinkRecord) -> Result<(), StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    Self::insert_link_in(&mut *tx, link).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn use_link(
                    &self,
                    ledger_id: &str,
                    link_hash: &[u8; 32],
                    purpose: &str,
                    now_micros: i64,
                ) -> Result<Option<LinkRecord>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::use_link_in(&mut *conn, ledger_id, link_hash, purpose, now_micros).await
                }

                async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
                    sqlx::query(
                        "DELETE FROM sessions WHERE token_id = $1
                             AND (revoked_at IS NOT NULL OR expires_at <= $2 OR idle_expires_at <= $2)",
                    )
                    .bind(Id(session.token_id))
                    .bind(session.created_at_micros)
                    .execute(&self.pool)
                    .await?;
                    sqlx::query(
                        "INSERT INTO sessions (session_hash, id, ledger_id, token_id, kind, remember, device_id,
                             created_at, last_seen_at, idle_expires_at, expires_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(session.hash.as_slice())
                    .bind(Id(session.id))
                    .bind(&session.ledger_id)
                    .bind(Id(session.token_id))
                    .bind(&session.kind)
                    .bind(session.remember)
                    .bind(session.device_id.map(Id))
                    .bind(session.created_at_micros)
                    .bind(session.last_seen_at_micros)
                    .bind(session.idle_expires_at_micros)
                    .bind(session.expires_at_micros)
                    .bind(session.revoked_at_micros)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionLookup>, StoreError> {
                    let row: Option<SessionRow> = sqlx::query_as(
                        "SELECT s.session_hash, s.id, s.ledger_id, s.token_id, s.kind, s.remember, s.device_id,
                                s.created_at, s.last_seen_at, s.idle_expires_at, s.expires_at, s.revoked_at,
                                t.ledger_id AS token_ledger_id, t.token_hash, t.role, t.scope, t.label,
                                t.created_at AS token_created_at, t.expires_at AS token_expires_at,
                                t.revoked_at AS token_revoked_at,
                                u.name AS user_name, u.disabled_at AS user_disabled_at, st.name AS staff_name
                         FROM sessions s
                         JOIN api_tokens t ON t.id = s.token_id
                         LEFT JOIN users u ON u.token_id = s.token_id
                         LEFT JOIN shop_staff st ON st.ledger_id = s.ledger_id AND st.token_id = s.token_id
                         WHERE s.session_hash = $1",
                    )
                    .bind(hash.as_slice())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(session_from).transpose()
                }

                async fn touch_session(
                    &self,
                    hash: &[u8; 32],
                    now_micros: i64,
                    idle_expires_at_micros: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3
                         WHERE session_hash = $1 AND revoked_at IS NULL",
                    )
                    .bind(hash.as_slice())
                    .bind(now_micros)
                    .bind(idle_expires_at_micros)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn revoke_session(&self, hash: &[u8; 32], now_micros: i64) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE sessions SET revoked_at = $2 WHERE session_hash = $1 AND revoked_at IS NULL",
                    )
                    .bind(hash.as_slice())
                    .bind(now_micros)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn revoke_sessions_of(
                    &self,
                    ledger_id: &str,
                    token_id: Uuid,
                    now_micros: i64,
                ) -> Result<u64, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::revoke_sessions_in(&mut *conn, ledger_id, token_id, now_micros).await
                }

                async fn pair_by_link(
                    &self,
                    ledger_id: &str,
                    link_hash: &[u8; 32],
                    device: &DeviceRecord,
                    label: Option<&str>,
                ) -> Result<Option<DeviceRecord>, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let Some(link) =
                        Self::use_link_in(&mut *tx, ledger_id, link_hash, "pair_device", device.paired_at_micros).await?
                    else {
                        return Ok(None);
                    };
                    let shop_id = parse_uuid(&link.subject)?;
                    let label = label
                        .map(str::to_owned)
                        .or(link.label)
                        .unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO till_devices (ledger_id, id, shop_id, secret_hash, label, paired_by, paired_at, unpaired_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                    )
                    .bind(ledger_id)
                    .bind(Id(device.id))
                    .bind(Id(shop_id))
                    .bind(device.secret_hash.as_slice())
                    .bind(&label)
                    .bind(&link.created_by)
                    .bind(device.paired_at_micros)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    self.device(ledger_id, device.id).await
                }

                async fn device_by_secret(
                    &self,
                    secret_hash: &[u8; 32],
                ) -> Result<Option<DeviceRecord>, StoreError> {
                    let row: Option<DeviceRow> = sqlx::query_as(&format!(
                        "SELECT {DEVICE_COLUMNS} FROM till_devices WHERE secret_hash = $1"
                    ))
                    .bind(secret_hash.as_slice())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(device_from).transpose()
                }

                async fn device(&self, ledger_id: &str, id: Uuid) -> Result<Option<DeviceRecord>, StoreError> {
                    let row: Option<DeviceRow> = sqlx::query_as(&format!(
                        "SELECT {DEVICE_COLUMNS} FROM till_devices WHERE ledger_id = $1 AND id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(device_from).transpose()
                }

                async fn devices(
                    &self,
                    ledger_id: &str,
                    shop_id: Uuid,
                ) -> Result<Vec<DeviceRecord>, StoreError> {
                    let rows: Vec<DeviceRow> = sqlx::query_as(&format!(
                        "SELECT {DEVICE_COLUMNS} FROM till_devices WHERE shop_id = $2 AND ledger_id = $1"
                    ))
                    .bind(ledger_id)
                    .bind(Id(shop_id))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut devices = rows
                        .into_iter()
                        .map(device_from)
                        .collect::<Result<Vec<_>, _>>()?;
                    devices.sort_by_key(|d| (d.paired_at_micros, d.id));
                    Ok(devices)
                }

                async fn unpair_device(
                    &self,
                    ledger_id: &str,
                    id: Uuid,
                    now_micros: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let done = sqlx::query(
                        "UPDATE till_devices SET unpaired_at = $3
                         WHERE ledger_id = $1 AND id = $2 AND unpaired_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(Id(id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn set_clerk_pin(
                    &self,
                    ledger_id: &str,
                    token_id: Uuid,
                    pin_hash: &str,
                    set_by: &str,
                    now_micros: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO clerk_pins (ledger_id, token_id, pin_hash, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (ledger_id, token_id) DO UPDATE SET pin_hash = excluded.pin_hash,
                             set_by = excluded.set_by, set_at = excluded.set_at",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(pin_hash)
                    .bind(set_by)
                    .bind(now_micros)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn clerks_with_pins(
                    &self,
                    ledger_id: &str,
                    shop_id: Uuid,
                    name: Option<&str>,
                ) -> Result<Vec<(ShopStaff, String)>, StoreError> {
                    let rows: Vec<(Id, Id, String, bool, String)> = sqlx::query_as(
                        "SELECT st.token_id, st.shop_id, st.name, st.is_owner, p.pin_hash
                         FROM shop_staff st JOIN clerk_pins p ON p.ledger_id = st.ledger_id AND p.token_id = st.token_id
                         WHERE st.ledger_id = $1 AND st.shop_id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(shop_id))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut clerks: Vec<(ShopStaff, String)> = rows
                        .into_iter()
                        .filter(|(_, _, n, _, _)| name.is_none_or(|wanted| wanted == n))
                        .map(|(token_id, shop_id, name, owner, pin)| {
                            (
                                ShopStaff {
                                    token_id: token_id.0,
                                    shop_id: shop_id.0,
                                    name,
                                    owner,
                                },
                                pin,
                            )
                        })
                        .collect();
                    clerks.sort_by(|a, b| (&a.0.name, a.0.token_id).cmp(&(&b.0.name, b.0.token_id)));
                    Ok(clerks)
                }

                async fn residents_by_phone(
                    &self,
                    ledger_id: &str,
                    digits: &str,
                ) -> Result<Vec<Uuid>, StoreError> {
                    let ids: Vec<Id> = sqlx::query_scalar(
                        "SELECT id FROM residents
                         WHERE ledger_id = $1 AND replace(replace(phone, ' ', ''), '-', '') = $2",
                    )
                    .bind(ledger_id)
                    .bind(digits)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut ids: Vec<Uuid> = ids.into_iter().map(|id| id.0).collect();
                    ids.sort_unstable();
                    Ok(ids)
                }

                async fn count_attempt(
                    &self,
                    ledger_id: &str,
                    id: Uuid,
                    keys: &[(&str, [u8; 32])],
                    now_micros: i64,
                    since_micros: i64,
                ) -> Result<Vec<Counted>, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    sqlx::query("DELETE FROM sign_in_failures WHERE at <= $2 AND ledger_id = $1")
                        .bind(ledger_id)
                        .bind(since_micros)
                        .execute(&mut *tx)
                        .await?;
                    for (scope, key_hash) in keys {
                        sqlx::query(
                            "INSERT INTO sign_in_failures (ledger_id, id, scope, key_hash, at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(ledger_id)
                        .bind(Id(id))
                        .bind(*scope)
                        .bind(key_hash.as_slice())
                        .bind(now_micros)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    // Counted after the commit: every attempt sees its own row and those of every
                    // attempt committed before it, so no more than the limit get through however
                    // many run at once.
                    let mut counted = Vec::with_capacity(keys.len());
                    for (_, key_hash) in keys {
                        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                            "SELECT count(*), min(at) FROM sign_in_failures
                             WHERE key_hash = $2 AND at > $3 AND ledger_id = $1",
                        )
                        .bind(ledger_id)
                        .bind(key_hash.as_slice())
                        .bind(since_micros)
                        .fetch_one(&self.pool)
                        .await?;
                        counted.push(Counted {
                            count,
                            oldest_at_micros: oldest.unwrap_or(now_micros),
                        });
                    }
                    Ok(counted)
                }

                async fn forget_attempt(&self, ledger_id: &str, id: Uuid) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM sign_in_failures WHERE ledger_id = $1 AND id = $2")
                        .bind(ledger_id)
                        .bind(Id(id))
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn clear_attempts(&self, ledger_id: &str, key_hash: &[u8; 32]) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM sign_in_failures WHERE key_hash = $2 AND ledger_id = $1")
                        .bind(ledger_id)
                        .bind(key_hash.as_slice())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn tokens(
                    &self,
                    ledger_id: &str,
                    residents: bool,
                    limit: i64,
                ) -> Result<Vec<$crate::store::session::ListedToken>, StoreError> {
                    #[derive(sqlx::FromRow)]
                    struct Listed {
                        #[sqlx(flatten)]
                        token: TokenRow,
                        user_name: Option<String>,
                        staff_name: Option<String>,
                    }
                    let rows: Vec<Listed> = sqlx::query_as(
                        "SELECT t.id, t.ledger_id, t.token_hash, t.role, t.scope, t.label, t.created_at,
                                t.expires_at, t.revoked_at, u.name AS user_name, s.name AS staff_name
                         FROM api_tokens t
                         LEFT JOIN users u ON u.token_id = t.id AND u.ledger_id = t.ledger_id
                         LEFT JOIN shop_staff s ON s.token_id = t.id AND s.ledger_id = t.ledger_id
                         WHERE t.ledger_id = $1
                             AND ($2 OR NOT (t.role = 'resident' AND t.label = $3))
                         ORDER BY t.created_at DESC, t.id DESC
                         LIMIT $4",
                    )
                    .bind(ledger_id)
                    .bind(residents)
                    .bind($crate::store::session::RESIDENT_SIGN_IN_LABEL)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|r| {
                            Ok($crate::store::session::ListedToken {
                                token: token_from(r.token)?,
                                user: r.user_name,
                                shop_staff: r.staff_name,
                            })
                        })
                        .collect()
                }

                async fn revoke_token_and_sessions(
                    &self,
                    ledger_id: &str,
                    token_id: Uuid,
                    now_micros: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let done = sqlx::query(
                        "UPDATE api_tokens SET revoked_at = $3
                         WHERE id = $2 AND ledger_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::revoke_sessions_in(&mut *tx, ledger_id, token_id, now_micros).await?;
                    tx.commit().await?;
                    Ok(true)
                }
            }

            /// Statements more than one method runs, on a connection or in a transaction.
            impl $store {
                async fn insert_link_in(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    link: &LinkRecord,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE one_time_links SET used_at = $4
                         WHERE subject = $3 AND purpose = $2 AND ledger_id = $1 AND used_at IS NULL",
                    )
                    .bind(&link.ledger_id)
                    .bind(&link.purpose)
                    .bind(&link.subject)
                    .bind(link.created_at_micros)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "INSERT INTO one_time_links (link_hash, ledger_id, purpose, subject, label, created_by,
                             created_at, expires_at, used_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(link.hash.as_slice())
                    .bind(&link.ledger_id)
                    .bind(&link.purpose)
                    .bind(&link.subject)
                    .bind(&link.label)
                    .bind(&link.created_by)
                    .bind(link.created_at_micros)
                    .bind(link.expires_at_micros)
                    .bind(link.used_at_micros)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                }

                /// Marks the link used, if it is usable: one statement, so at most one caller
                /// ever gets it.
                async fn use_link_in(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    ledger_id: &str,
                    link_hash: &[u8; 32],
                    purpose: &str,
                    now_micros: i64,
                ) -> Result<Option<LinkRecord>, StoreError> {
                    let row: Option<LinkRow> = sqlx::query_as(&format!(
                        "UPDATE one_time_links SET used_at = $4
                         WHERE link_hash = $1 AND ledger_id = $2 AND purpose = $3 AND used_at IS NULL
                             AND expires_at > $4
                         RETURNING {LINK_COLUMNS}"
                    ))
                    .bind(link_hash.as_slice())
                    .bind(ledger_id)
                    .bind(purpose)
                    .bind(now_micros)
                    .fetch_optional(&mut *conn)
                    .await?;
                    row.map(link_from).transpose()
                }

                async fn revoke_sessions_in(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    ledger_id: &str,
                    token_id: Uuid,
                    now_micros: i64,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "UPDATE sessions SET revoked_at = $3
                         WHERE token_id = $2 AND ledger_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(now_micros)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}

pub(crate) use session_store;

pub(crate) const USER_COLUMNS: &str =
    "id, ledger_id, role, scope, name, token_id, password_hash, created_at, disabled_at";

pub(crate) const DEVICE_COLUMNS: &str =
    "id, ledger_id, shop_id, secret_hash, label, paired_by, paired_at, unpaired_at";

pub(crate) const LINK_COLUMNS: &str =
    "link_hash, ledger_id, purpose, subject, label, created_by, created_at, expires_at, used_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Id,
    ledger_id: String,
    role: String,
    scope: Option<String>,
    name: String,
    token_id: Id,
    password_hash: Option<String>,
    created_at: i64,
    disabled_at: Option<i64>,
}

pub(crate) fn user_from(row: UserRow) -> UserRecord {
    UserRecord {
        id: row.id.0,
        ledger_id: row.ledger_id,
        role: row.role,
        scope: row.scope,
        name: row.name,
        token_id: row.token_id.0,
        password_hash: row.password_hash,
        created_at_micros: row.created_at,
        disabled_at_micros: row.disabled_at,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LinkRow {
    link_hash: Vec<u8>,
    ledger_id: String,
    purpose: String,
    subject: String,
    label: Option<String>,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

pub(crate) fn link_from(row: LinkRow) -> Result<LinkRecord, StoreError> {
    Ok(LinkRecord {
        hash: hash32(&row.link_hash)?,
        ledger_id: row.ledger_id,
        purpose: row.purpose,
        subject: row.subject,
        label: row.label,
        created_by: row.created_by,
        created_at_micros: row.created_at,
        expires_at_micros: row.expires_at,
        used_at_micros: row.used_at,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    id: Id,
    ledger_id: String,
    shop_id: Id,
    secret_hash: Vec<u8>,
    label: String,
    paired_by: String,
    paired_at: i64,
    unpaired_at: Option<i64>,
}

pub(crate) fn device_from(row: DeviceRow) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.id.0,
        ledger_id: row.ledger_id,
        shop_id: row.shop_id.0,
        secret_hash: hash32(&row.secret_hash)?,
        label: row.label,
        paired_by: row.paired_by,
        paired_at_micros: row.paired_at,
        unpaired_at_micros: row.unpaired_at,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_hash: Vec<u8>,
    id: Id,
    ledger_id: String,
    token_id: Id,
    kind: String,
    remember: bool,
    device_id: Option<Id>,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    token_ledger_id: String,
    token_hash: Vec<u8>,
    role: String,
    scope: Option<String>,
    label: String,
    token_created_at: i64,
    token_expires_at: Option<i64>,
    token_revoked_at: Option<i64>,
    user_name: Option<String>,
    user_disabled_at: Option<i64>,
    staff_name: Option<String>,
}

pub(crate) fn session_from(row: SessionRow) -> Result<SessionLookup, StoreError> {
    Ok(SessionLookup {
        session: SessionRecord {
            hash: hash32(&row.session_hash)?,
            id: row.id.0,
            ledger_id: row.ledger_id,
            token_id: row.token_id.0,
            kind: row.kind,
            remember: row.remember,
            device_id: opt(row.device_id),
            created_at_micros: row.created_at,
            last_seen_at_micros: row.last_seen_at,
            idle_expires_at_micros: row.idle_expires_at,
            expires_at_micros: row.expires_at,
            revoked_at_micros: row.revoked_at,
        },
        token: TokenRecord {
            id: row.token_id.0,
            ledger_id: row.token_ledger_id,
            token_hash: hash32(&row.token_hash)?,
            role: row.role,
            scope: row.scope,
            label: row.label,
            created_at_micros: row.token_created_at,
            expires_at_micros: row.token_expires_at,
            revoked_at_micros: row.token_revoked_at,
        },
        user_disabled: row.user_disabled_at.is_some(),
        name: row.user_name.or(row.staff_name),
    })
}
