//! What a customer wrote and showed of an item on the portal: a note per returned line and up
//! to a few photos. A photo is stored when it is uploaded, before its return exists, under a
//! random upload id the form carries on (so a form shown again for another field's mistake
//! keeps it); registering the return attaches it. Uploads never attached are deleted after a
//! while, and erasing a return's personal data deletes its notes and photos.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

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
    conn: &Connection,
    up: &Upload<'_>,
    now_ms: i64,
    stale_before_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM return_photos WHERE rma IS NULL AND created_ms < ?1",
        [stale_before_ms],
    )?;
    conn.execute(
        "INSERT INTO return_photos
           (upload, merchant, order_ref, sku, content_type, bytes, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            up.upload,
            up.merchant,
            up.order_ref,
            up.sku,
            up.content_type,
            up.bytes,
            now_ms
        ],
    )?;
    Ok(())
}

/// The upload ids among `uploads` still waiting for a return of that order's line `sku`.
pub fn pending(
    conn: &Connection,
    merchant: &str,
    order_ref: &str,
    sku: &str,
    uploads: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM return_photos
         WHERE upload = ?1 AND merchant = ?2 AND order_ref = ?3 AND sku = ?4 AND rma IS NULL",
    )?;
    let mut out = Vec::new();
    for u in uploads {
        if stmt
            .query_row(params![u, merchant, order_ref, sku], |_| Ok(()))
            .optional()?
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
pub fn attach(conn: &mut Connection, rma: &str, w: &LineWords<'_>) -> Result<usize, StoreError> {
    let tx = conn.transaction()?;
    if !w.note.is_empty() {
        tx.execute(
            "INSERT INTO return_notes (rma, sku, note) VALUES (?1, ?2, ?3)
             ON CONFLICT (rma, sku) DO UPDATE SET note = excluded.note",
            params![rma, w.sku, w.note],
        )?;
    }
    let mut n = 0;
    for u in w.uploads {
        n += tx.execute(
            "UPDATE return_photos SET rma = ?1
             WHERE upload = ?2 AND merchant = ?3 AND order_ref = ?4 AND sku = ?5 AND rma IS NULL",
            params![rma, u, w.merchant, w.order_ref, w.sku],
        )?;
    }
    tx.commit()?;
    Ok(n)
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
pub fn of_return(conn: &Connection, rma: &str) -> Result<Vec<LineMedia>, StoreError> {
    let mut out: Vec<LineMedia> = Vec::new();
    let mut notes =
        conn.prepare_cached("SELECT sku, note FROM return_notes WHERE rma = ?1 ORDER BY sku")?;
    for row in notes.query_map([rma], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (sku, note) = row?;
        out.push(LineMedia {
            sku,
            note: Some(note),
            photos: Vec::new(),
        });
    }
    let mut photos =
        conn.prepare_cached("SELECT sku, id FROM return_photos WHERE rma = ?1 ORDER BY id")?;
    for row in photos.query_map([rma], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (sku, id) = row?;
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
    conn: &Connection,
    rma: &str,
    id: i64,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT content_type, bytes FROM return_photos WHERE rma = ?1 AND id = ?2",
            params![rma, id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Deletes the notes and photos of `rma`. Returns how many rows.
pub(crate) fn erase_return(tx: &Transaction<'_>, rma: &str) -> Result<usize, StoreError> {
    let photos = tx.execute("DELETE FROM return_photos WHERE rma = ?1", [rma])?;
    let notes = tx.execute("DELETE FROM return_notes WHERE rma = ?1", [rma])?;
    Ok(photos + notes)
}

/// Deletes the photos uploaded for the orders of customer `reference` and never attached.
pub(crate) fn erase_customer_uploads(
    tx: &Transaction<'_>,
    reference: &str,
) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM return_photos WHERE rma IS NULL AND EXISTS (
           SELECT 1 FROM orders o WHERE o.merchant = return_photos.merchant
             AND o.order_ref = return_photos.order_ref AND o.customer_ref = ?1)",
        [reference],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
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
        put_upload(&c, &upload("u1", "A"), 1_000, 0).unwrap();
        put_upload(&c, &upload("u2", "B"), 1_000, 0).unwrap();
        let all = vec!["u1".to_owned(), "u2".to_owned(), "nope".to_owned()];
        assert_eq!(pending(&c, "m", "O-1", "A", &all).unwrap(), ["u1"]);
        let words = LineWords {
            merchant: "m",
            order_ref: "O-1",
            sku: "A",
            note: "縫い目がほつれています",
            uploads: &all,
        };
        assert_eq!(attach(&mut c, "RMA-1", &words).unwrap(), 1);
        let media = of_return(&c, "RMA-1").unwrap();
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].note.as_deref(), Some("縫い目がほつれています"));
        let (ty, bytes) = photo(&c, "RMA-1", media[0].photos[0]).unwrap().unwrap();
        assert_eq!(
            (ty.as_str(), bytes.as_slice()),
            ("image/png", &b"\x89PNG"[..])
        );
        assert_eq!(photo(&c, "RMA-2", media[0].photos[0]).unwrap(), None);
        // Attached once: another return cannot take it.
        assert_eq!(attach(&mut c, "RMA-2", &words).unwrap(), 0);
    }

    #[test]
    fn uploads_never_attached_are_deleted_after_a_while() {
        let c = db();
        put_upload(&c, &upload("old", "A"), 1_000, 0).unwrap();
        put_upload(&c, &upload("new", "A"), 90_000, 50_000).unwrap();
        let ids = vec!["old".to_owned(), "new".to_owned()];
        assert_eq!(pending(&c, "m", "O-1", "A", &ids).unwrap(), ["new"]);
    }
}
