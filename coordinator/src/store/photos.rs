//! What a customer wrote and showed of an item on the portal: a note per returned line and up
//! to a few photos. A photo is stored when it is uploaded, before its return exists, under a
//! random upload id the form carries on (so a form shown again for another field's mistake
//! keeps it); registering the return attaches it. Uploads never attached are deleted after a
//! while, and erasing a return's personal data deletes its notes and photos.

use super::sql::{in_transaction, Sql};
use super::StoreError;

/// The migration that makes the tables (appended to `schema::migrations`).
pub const MIGRATION: &str = r#"
    CREATE TABLE return_photos (
        id           INTEGER PRIMARY KEY,
        upload       TEXT NOT NULL UNIQUE,
        merchant     TEXT NOT NULL,
        order_ref    TEXT NOT NULL,
        sku          TEXT NOT NULL,
        rma          TEXT,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL,
        created_ms   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX return_photos_rma ON return_photos (rma) WHERE rma IS NOT NULL;
    CREATE INDEX return_photos_pending ON return_photos (created_ms) WHERE rma IS NULL;
    CREATE TABLE return_notes (
        rma  TEXT NOT NULL,
        sku  TEXT NOT NULL,
        note TEXT NOT NULL,
        PRIMARY KEY (rma, sku)
    ) STRICT, WITHOUT ROWID;
"#;

/// A photo uploaded for one line of an order, not yet attached to a return.
pub struct Upload<'a> {
    pub upload: &'a str,
    pub merchant: &'a str,
    pub order_ref: &'a str,
    pub sku: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// Stores an uploaded photo, and deletes the uploads never attached since `stale_before_ms`.
pub fn put_upload(
    conn: &mut dyn Sql,
    up: &Upload<'_>,
    now_ms: i64,
    stale_before_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM return_photos WHERE rma IS NULL AND created_ms < ?1",
        &[&stale_before_ms],
    )?;
    conn.execute(
        "INSERT INTO return_photos
           (upload, merchant, order_ref, sku, content_type, bytes, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            &up.upload,
            &up.merchant,
            &up.order_ref,
            &up.sku,
            &up.content_type,
            &up.bytes,
            &now_ms,
        ],
    )?;
    Ok(())
}

/// The upload ids among `uploads` still waiting for a return of that order's line `sku`.
pub fn pending(
    conn: &mut dyn Sql,
    merchant: &str,
    order_ref: &str,
    sku: &str,
    uploads: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for u in uploads {
        if conn
            .query_opt(
                "SELECT 1 FROM return_photos
                 WHERE upload = ?1 AND merchant = ?2 AND order_ref = ?3 AND sku = ?4 AND rma IS NULL",
                &[u, &merchant, &order_ref, &sku],
            )?
            .is_some()
        {
            out.push(u.clone());
        }
    }
    Ok(out)
}

/// What the customer said of one line of `rma`: its note (if any) and the uploads to attach.
pub struct LineWords<'a> {
    pub merchant: &'a str,
    pub order_ref: &'a str,
    pub sku: &'a str,
    pub note: &'a str,
    pub uploads: &'a [String],
}

/// Attaches a line's note and uploads to `rma`; an upload of another order or line, or one
/// already attached, is left alone. Returns how many photos were attached.
pub fn attach(conn: &mut dyn Sql, rma: &str, w: &LineWords<'_>) -> Result<usize, StoreError> {
    in_transaction(conn, |tx| {
        if !w.note.is_empty() {
            tx.execute(
                "INSERT INTO return_notes (rma, sku, note) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rma, sku) DO UPDATE SET note = excluded.note",
                &[&rma, &w.sku, &w.note],
            )?;
        }
        let mut n = 0;
        for u in w.uploads {
            n += tx.execute(
                "UPDATE return_photos SET rma = ?1
                 WHERE upload = ?2 AND merchant = ?3 AND order_ref = ?4 AND sku = ?5 AND rma IS NULL",
                &[&rma, u, &w.merchant, &w.order_ref, &w.sku],
            )?;
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    })
}

/// One line of a return as its customer described it, for ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineMedia {
    pub sku: String,
    pub note: Option<String>,
    /// The photos' ids, in the order they were uploaded.
    pub photos: Vec<i64>,
}

/// The notes and photos of `rma`, by line.
pub fn of_return(conn: &mut dyn Sql, rma: &str) -> Result<Vec<LineMedia>, StoreError> {
    let mut out: Vec<LineMedia> = conn.map_rows(
        "SELECT sku, note FROM return_notes WHERE rma = ?1 ORDER BY sku",
        &[&rma],
        |r| {
            Ok(LineMedia {
                sku: r.get(0)?,
                note: Some(r.get(1)?),
                photos: Vec::new(),
            })
        },
    )?;
    let photos: Vec<(String, i64)> = conn.map_rows(
        "SELECT sku, id FROM return_photos WHERE rma = ?1 ORDER BY id",
        &[&rma],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (sku, id) in photos {
        match out.iter_mut().find(|l| l.sku == sku) {
            Some(l) => l.photos.push(id),
            None => out.push(LineMedia {
                sku,
                note: None,
                photos: vec![id],
            }),
        }
    }
    Ok(out)
}

/// Photo `id` of `rma`: its checked content type and its bytes.
pub fn photo(
    conn: &mut dyn Sql,
    rma: &str,
    id: i64,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(conn.map_row_opt(
        "SELECT content_type, bytes FROM return_photos WHERE rma = ?1 AND id = ?2",
        &[&rma, &id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Deletes the notes and photos of `rma`. Returns how many rows.
pub fn erase_return(tx: &mut dyn Sql, rma: &str) -> Result<usize, StoreError> {
    let photos = tx.execute("DELETE FROM return_photos WHERE rma = ?1", &[&rma])?;
    let notes = tx.execute("DELETE FROM return_notes WHERE rma = ?1", &[&rma])?;
    Ok(usize::try_from(photos + notes).unwrap_or(usize::MAX))
}

/// Deletes the photos uploaded for the orders of customer `reference` and never attached.
pub fn erase_customer_uploads(tx: &mut dyn Sql, reference: &str) -> Result<usize, StoreError> {
    let n = tx.execute(
        "DELETE FROM return_photos WHERE rma IS NULL AND EXISTS (
           SELECT 1 FROM orders o WHERE o.merchant = return_photos.merchant
             AND o.order_ref = return_photos.order_ref AND o.customer_ref = ?1)",
        &[&reference],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrations().to_latest(&mut c).unwrap();
        c
    }

    fn upload<'a>(id: &'a str, sku: &'a str) -> Upload<'a> {
        Upload {
            upload: id,
            merchant: "m",
            order_ref: "O-1",
            sku,
            content_type: "image/png",
            bytes: b"\x89PNG",
        }
    }

    #[test]
    fn an_upload_is_attached_to_its_lines_return_only() {
        let mut c = db();
        put_upload(&mut c, &upload("u1", "A"), 1_000, 0).unwrap();
        put_upload(&mut c, &upload("u2", "B"), 1_000, 0).unwrap();
        let all = vec!["u1".to_owned(), "u2".to_owned(), "nope".to_owned()];
        assert_eq!(pending(&mut c, "m", "O-1", "A", &all).unwrap(), ["u1"]);
        let words = LineWords {
            merchant: "m",
            order_ref: "O-1",
            sku: "A",
            note: "縫い目がほつれています",
            uploads: &all,
        };
        assert_eq!(attach(&mut c, "RMA-1", &words).unwrap(), 1);
        let media = of_return(&mut c, "RMA-1").unwrap();
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].note.as_deref(), Some("縫い目がほつれています"));
        let (ty, bytes) = photo(&mut c, "RMA-1", media[0].photos[0]).unwrap().unwrap();
        assert_eq!(
            (ty.as_str(), bytes.as_slice()),
            ("image/png", &b"\x89PNG"[..])
        );
        assert_eq!(photo(&mut c, "RMA-2", media[0].photos[0]).unwrap(), None);
        // Attached once: another return cannot take it.
        assert_eq!(attach(&mut c, "RMA-2", &words).unwrap(), 0);
    }

    #[test]
    fn uploads_never_attached_are_deleted_after_a_while() {
        let mut c = db();
        put_upload(&mut c, &upload("old", "A"), 1_000, 0).unwrap();
        put_upload(&mut c, &upload("new", "A"), 90_000, 50_000).unwrap();
        let ids = vec!["old".to_owned(), "new".to_owned()];
        assert_eq!(pending(&mut c, "m", "O-1", "A", &ids).unwrap(), ["new"]);
    }
}
