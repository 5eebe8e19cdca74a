//! API tokens in SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};
use signoff_core::TokenRecord;
use signoff_store::codec::TokenRow;
use signoff_store::{StoreError, StoreResult};

use crate::rows::{corrupt, micros};
use crate::unavailable;

const TOKEN_COLUMNS: &str =
    "id, name, role, groups, secret_hash, created_at, expires_at, revoked_at";

/// Stores a new token.
pub(crate) fn insert(conn: &Connection, token: &TokenRecord) -> StoreResult<()> {
    let groups = serde_json::to_string(&token.groups).map_err(|e| corrupt("groups", e))?;
    conn.prepare_cached(&format!(
        "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            token.id,
            token.name,
            token.role.as_str(),
            groups,
            token.secret_hash.to_hex(),
            micros(token.created_at),
            token.expires_at.map(micros),
            token.revoked_at.map(micros),
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Marks a token revoked (once); returns it as it is now.
pub(crate) fn revoke(
    conn: &Connection,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<TokenRecord>> {
    conn.prepare_cached("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut stmt| stmt.execute(params![id, micros(at)]))
        .map_err(unavailable)?;
    load(conn, id)
}

/// One token by id.
pub(crate) fn load(conn: &Connection, id: &str) -> StoreResult<Option<TokenRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"))
        .map_err(unavailable)?;
    stmt.query_row([id], |row| Ok(from_row(row)))
        .optional()
        .map_err(unavailable)?
        .transpose()
}

/// Every token, oldest first.
pub(crate) fn load_all(conn: &Connection) -> StoreResult<Vec<TokenRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
        ))
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut tokens = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        tokens.push(from_row(row)?);
    }
    Ok(tokens)
}

fn from_row(row: &Row<'_>) -> Result<TokenRecord, StoreError> {
    let get_err = |e: rusqlite::Error| corrupt("token row", e);
    TokenRow {
        id: row.get(0).map_err(get_err)?,
        name: row.get(1).map_err(get_err)?,
        role: row.get(2).map_err(get_err)?,
        groups: row.get(3).map_err(get_err)?,
        secret_hash: row.get(4).map_err(get_err)?,
        created_at: row.get(5).map_err(get_err)?,
        expires_at: row.get(6).map_err(get_err)?,
        revoked_at: row.get(7).map_err(get_err)?,
    }
    .decode()
}
