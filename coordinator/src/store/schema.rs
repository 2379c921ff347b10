//! The coordinator database's schema: every migration, in order (never edit a released one;
//! append).

use super::*;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT;
        -- Upstream high-water mark per site and epoch. No time window: kept for ever.
        CREATE TABLE op_streams (
            site          TEXT NOT NULL,
            epoch         INTEGER NOT NULL,
            applied_seq   INTEGER NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            PRIMARY KEY (site, epoch)
        ) STRICT;
        CREATE TABLE ops (
            site       TEXT NOT NULL,
            epoch      INTEGER NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            hash       BLOB NOT NULL,
            payload    BLOB NOT NULL,
            applied_ms INTEGER NOT NULL,
            PRIMARY KEY (site, epoch, seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE anomalies (
            id     INTEGER PRIMARY KEY,
            site   TEXT NOT NULL,
            epoch  INTEGER,
            seq    INTEGER,
            kind   TEXT NOT NULL,
            lpn    TEXT,
            detail TEXT NOT NULL,
            at_ms  INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE units (
            lpn        TEXT PRIMARY KEY,
            site       TEXT NOT NULL,
            sku        TEXT NOT NULL,
            rma        TEXT,
            state      TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE inventory (
            site TEXT NOT NULL,
            sku  TEXT NOT NULL,
            qty  INTEGER NOT NULL,
            PRIMARY KEY (site, sku)
        ) STRICT;
        -- Downstream: one command stream per site, numbered in the coordinator's epoch.
        CREATE TABLE command_streams (
            site      TEXT PRIMARY KEY,
            head_seq  INTEGER NOT NULL,
            acked_seq INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE commands (
            site       TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            payload    BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY (site, seq)
        ) STRICT;
        CREATE TABLE returns (
            rma         TEXT PRIMARY KEY,
            site        TEXT NOT NULL,
            origin      TEXT NOT NULL,
            lines_json  TEXT NOT NULL,
            routing     TEXT NOT NULL,
            command_seq INTEGER NOT NULL,
            created_ms  INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // Station work reported by the sites: how units arrived (quarantine for unidentified
        // ones), grades kept for undoing a disposition, parcel closings, the catalogue.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN receipt TEXT NOT NULL DEFAULT 'matched';
        ALTER TABLE units ADD COLUMN parcel_ref TEXT;
        ALTER TABLE units ADD COLUMN quarantine INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE units ADD COLUMN grade TEXT;
        ALTER TABLE returns ADD COLUMN status TEXT NOT NULL DEFAULT 'expected';
        ALTER TABLE returns ADD COLUMN shortages_json TEXT;
        CREATE TABLE catalog (
            merchant      TEXT NOT NULL,
            sku           TEXT NOT NULL,
            gtin14        TEXT,
            category      TEXT NOT NULL,
            price_yen     INTEGER NOT NULL,
            final_sale    INTEGER NOT NULL,
            needs_testing INTEGER NOT NULL,
            PRIMARY KEY (merchant, sku)
        ) STRICT;
        "#,
        ),
        M::up("ALTER TABLE units ADD COLUMN defects TEXT;"),
        // Personal data (Japan's APPI), pseudonymised after the retention period or on request.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN customer_ref TEXT;
        ALTER TABLE returns ADD COLUMN customer_name TEXT;
        ALTER TABLE returns ADD COLUMN customer_address TEXT;
        CREATE INDEX returns_customer ON returns (customer_ref);
        "#,
        ),
        // API keys (see `apikeys`): only the SHA-256 of each key.
        M::up(
            r#"
        CREATE TABLE api_keys (
            id         TEXT PRIMARY KEY,
            sha256     TEXT NOT NULL UNIQUE,
            scope      TEXT NOT NULL,
            label      TEXT,
            source     TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            revoked_ms INTEGER
        ) STRICT;
        "#,
        ),
        // The life of a return (see `lifecycle`): who it belongs to, where it was registered,
        // and its timeline. Returns registered before get their `registered` event.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN merchant TEXT;
        ALTER TABLE returns ADD COLUMN origin_store TEXT;
        CREATE INDEX returns_status_created ON returns (status, created_ms);
        CREATE INDEX units_rma ON units (rma);
        CREATE TABLE return_events (
            id          INTEGER PRIMARY KEY,
            rma         TEXT NOT NULL,
            kind        TEXT NOT NULL,
            site        TEXT,
            lpn         TEXT,
            detail      TEXT,
            at_ms       INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX return_events_rma ON return_events (rma, id);
        INSERT INTO return_events (rma, kind, site, detail, at_ms, recorded_ms)
            SELECT rma, 'registered', site, routing, created_ms, created_ms FROM returns;
        "#,
        ),
        // Disposition execution reported by the sites: the bin a unit is in, its function
        // test, a transfer in flight; the replacement an exchange asks for and the unit sent.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN bin TEXT;
        ALTER TABLE units ADD COLUMN tested INTEGER;
        ALTER TABLE units ADD COLUMN transfer_to TEXT;
        -- The centre's disposition by value (NULL: not decided yet for the current grade).
        ALTER TABLE units ADD COLUMN decided TEXT;
        ALTER TABLE units ADD COLUMN decision_why TEXT;
        ALTER TABLE returns ADD COLUMN exchange_sku TEXT;
        ALTER TABLE returns ADD COLUMN exchange_lpn TEXT;
        -- Resale listings (see listings.rs): one live listing per unit and channel.
        CREATE TABLE listings (
            id             INTEGER PRIMARY KEY,
            lpn            TEXT NOT NULL,
            channel        TEXT NOT NULL,
            site           TEXT NOT NULL,
            sku            TEXT NOT NULL,
            grade          TEXT NOT NULL,
            list_price_yen INTEGER NOT NULL,
            price_yen      INTEGER NOT NULL,
            status         TEXT NOT NULL,
            created_ms     INTEGER NOT NULL,
            updated_ms     INTEGER NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX listings_live ON listings (lpn, channel) WHERE status = 'listed';
        CREATE INDEX listings_lpn ON listings (lpn);
        "#,
        ),
        // The commerce side of a return (see `commerce`): the order, how it travels, what the
        // customer wants, the fees and bonus granted, tracking, the refund; demand per site
        // for rebalancing; how far each merchant's webhook has been delivered.
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN order_ref TEXT;
        ALTER TABLE returns ADD COLUMN order_date_ms INTEGER;
        ALTER TABLE returns ADD COLUMN method TEXT;
        ALTER TABLE returns ADD COLUMN resolution TEXT;
        ALTER TABLE returns ADD COLUMN fee_yen INTEGER;
        ALTER TABLE returns ADD COLUMN credit_bonus_percent INTEGER;
        ALTER TABLE returns ADD COLUMN value_yen INTEGER;
        ALTER TABLE returns ADD COLUMN carrier TEXT;
        ALTER TABLE returns ADD COLUMN tracking TEXT;
        ALTER TABLE returns ADD COLUMN transit_status TEXT;
        ALTER TABLE returns ADD COLUMN policy_json TEXT;
        ALTER TABLE returns ADD COLUMN refund_yen INTEGER;
        ALTER TABLE returns ADD COLUMN refund_confirmed_ms INTEGER;
        ALTER TABLE returns ADD COLUMN routing_candidates TEXT;
        CREATE INDEX returns_tracking ON returns (tracking);
        CREATE INDEX returns_order_ref ON returns (order_ref);
        CREATE TABLE demand (
            site  TEXT NOT NULL,
            sku   TEXT NOT NULL,
            units INTEGER NOT NULL,
            PRIMARY KEY (site, sku)
        ) STRICT;
        CREATE TABLE billable (
            id       INTEGER PRIMARY KEY,
            merchant TEXT NOT NULL,
            activity TEXT NOT NULL,
            lpn      TEXT NOT NULL,
            site     TEXT NOT NULL,
            at_ms    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX billable_merchant ON billable (merchant, activity, at_ms);
        CREATE INDEX billable_lpn ON billable (lpn);
        CREATE TABLE webhook_cursors (
            merchant        TEXT PRIMARY KEY,
            last_event_id   INTEGER NOT NULL,
            attempts        INTEGER NOT NULL,
            next_attempt_ms INTEGER NOT NULL,
            last_error      TEXT,
            delivered       INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // The condition a store saw (`counter_checks`), a refund without the return
        // (`returnless`), and the stock reserved for an exchange (`reservations`).
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN store_condition TEXT;
        ALTER TABLE returns ADD COLUMN returnless TEXT;
        CREATE TABLE reservations (
            rma        TEXT PRIMARY KEY,
            sku        TEXT NOT NULL,
            site       TEXT,
            lpn        TEXT,
            status     TEXT NOT NULL,
            advance    INTEGER NOT NULL,
            order_seq  INTEGER,
            why        TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX reservations_lpn ON reservations (lpn) WHERE status = 'reserved';
        "#,
        ),
        // Store drop-offs consolidated into totes (see `totes`).
        M::up(
            r#"
        ALTER TABLE returns ADD COLUMN tote TEXT;
        CREATE TABLE totes (
            tote        TEXT PRIMARY KEY,
            store       TEXT NOT NULL,
            site        TEXT NOT NULL,
            status      TEXT NOT NULL,
            n_returns   INTEGER NOT NULL,
            created_ms  INTEGER NOT NULL,
            received_ms INTEGER
        ) STRICT;
        CREATE INDEX returns_waiting ON returns (origin_store, status) WHERE tote IS NULL;
        "#,
        ),
        // The dashboard and the store counter (see `dashboard`, `orders`): indexes for their
        // counts, the orders stores look returns up by, and the order a return came from.
        M::up(
            r#"
        CREATE INDEX units_state_site ON units (state, site, quarantine);
        CREATE INDEX units_transfer_to ON units (transfer_to) WHERE transfer_to IS NOT NULL;
        CREATE INDEX ops_applied ON ops (applied_ms);
        CREATE INDEX returns_created ON returns (created_ms);
        CREATE INDEX returns_origin_store ON returns (origin_store, status);
        CREATE TABLE orders (
            merchant     TEXT NOT NULL,
            order_ref    TEXT NOT NULL,
            customer_ref TEXT,
            ordered_ms   INTEGER NOT NULL,
            lines_json   TEXT NOT NULL,
            updated_ms   INTEGER NOT NULL,
            PRIMARY KEY (merchant, order_ref)
        ) STRICT;
        CREATE INDEX orders_ref ON orders (order_ref);
        CREATE INDEX orders_customer ON orders (customer_ref);
        "#,
        ),
        // The passes after each batch look only at what may need them: disposed units not
        // decided yet, quarantined units that came with a reference.
        M::up(
            r#"
        CREATE INDEX units_undecided ON units (lpn)
            WHERE decided IS NULL AND state >= 'disposed:' AND state < 'disposed;';
        CREATE INDEX units_matchable ON units (updated_ms)
            WHERE quarantine = 1 AND parcel_ref IS NOT NULL AND receipt = 'unidentified';
        "#,
        ),
        // A unit received against a return that may not count it (routed elsewhere, a SKU it
        // does not list, beyond its quantity after its parcel closed) keeps that return here
        // only as a claim, for the anomaly and the customer's history, never as its `rma`.
        M::up(
            r#"
        ALTER TABLE units ADD COLUMN claimed_rma TEXT;
        CREATE INDEX units_claimed_rma ON units (claimed_rma) WHERE claimed_rma IS NOT NULL;
        CREATE INDEX units_waiting ON units (site) WHERE quarantine = 1;
        "#,
        ),
        // A catalogue item's style groups the variants of one product, for exchanges.
        M::up(
            r#"
        ALTER TABLE catalog ADD COLUMN style TEXT;
        CREATE INDEX catalog_style ON catalog (merchant, style) WHERE style IS NOT NULL;
        "#,
        ),
        // Every start numbers the command streams in a new epoch (store/command_epochs.rs).
        M::up(command_epochs::MIGRATION),
        // The apply path counts per batch what it wrote as a row per op (store/tallies.rs).
        M::up(tallies::MIGRATION),
        // Browser sessions outlive a restart (store/sessions.rs).
        M::up(super::sessions::MIGRATION),
        // Customers' contact on their orders, and the outbox of messages to them (see
        // `notifications`): its own high-water marks over the timeline and over registration
        // times start at what is stored, so no customer is told of the past.
        M::up(
            r#"
        ALTER TABLE orders ADD COLUMN email TEXT;
        ALTER TABLE orders ADD COLUMN phone TEXT;
        ALTER TABLE orders ADD COLUMN line_user_id TEXT;
        ALTER TABLE orders ADD COLUMN language TEXT;
        CREATE INDEX orders_email ON orders (email) WHERE email IS NOT NULL;
        CREATE TABLE notifications (
            id              INTEGER PRIMARY KEY,
            rma             TEXT NOT NULL,
            kind            TEXT NOT NULL,
            event_id        INTEGER,
            status          TEXT NOT NULL,
            channel         TEXT,
            attempts        INTEGER NOT NULL,
            next_attempt_ms INTEGER NOT NULL,
            last_error      TEXT,
            created_ms      INTEGER NOT NULL,
            done_ms         INTEGER,
            UNIQUE (rma, kind)
        ) STRICT;
        CREATE INDEX notifications_due ON notifications (next_attempt_ms) WHERE status = 'queued';
        CREATE TABLE notification_marks (
            id               INTEGER PRIMARY KEY CHECK (id = 1),
            last_event_id    INTEGER NOT NULL,
            delay_created_ms INTEGER NOT NULL,
            delay_rma        TEXT NOT NULL
        ) STRICT;
        INSERT INTO notification_marks (id, last_event_id, delay_created_ms, delay_rma)
            VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM return_events),
                       (SELECT COALESCE(MAX(created_ms), 0) FROM returns), '');
        CREATE TABLE status_tokens (
            sha256     TEXT PRIMARY KEY,
            rma        TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX status_tokens_rma ON status_tokens (rma);
        CREATE TABLE notification_optouts (
            merchant     TEXT NOT NULL,
            email_sha256 TEXT NOT NULL,
            at_ms        INTEGER NOT NULL,
            PRIMARY KEY (merchant, email_sha256)
        ) STRICT;
        "#,
        ),
        // The returns list's search and filters (store/return_list.rs).
        M::up(super::return_list::MIGRATION),
        // Alerts acknowledged or muted by ops (store/alert_silences.rs).
        M::up(super::alert_silences::MIGRATION),
        // A site's page reads its events and anomalies by site (store/site_activity.rs).
        M::up(super::site_activity::MIGRATION),
        // Failed lookups on the customer portal, per address and per order (store/portal.rs).
        M::up(super::portal::MIGRATION),
        // Merchants' portal and message settings, seeded by config, set by the API
        // (store/merchant_portal.rs).
        M::up(super::merchant_portal::MIGRATION),
        // What customers wrote and showed of their items on the portal (store/photos.rs).
        M::up(super::photos::MIGRATION),
        // The pickups customers booked on the portal (store/pickups.rs).
        M::up(super::pickups::MIGRATION),
        // Alerts told by mail and webhook, and their outbox (store/alert_notices.rs).
        M::up(super::alert_notices::MIGRATION),
        // Anomalies' and events' details as a code and parameters beside their English
        // (store/details.rs).
        M::up(super::details::MIGRATION),
        // Alert notices keep the alert's figures, to be told in `[alerts] language`
        // (store/alert_notices.rs).
        M::up(super::alert_notices::MIGRATION_PARAMS),
        // What merchants call their categories, for the pages (store/category_names.rs).
        M::up(super::category_names::MIGRATION),
        // Units received without a return (an unidentified parcel: most of a site's backlog
        // after a day offline) stay out of `units_rma`: every query of it names a return, and
        // an entry per such unit was a B-tree insert per receipt on the apply path.
        M::up(
            r#"
        DROP INDEX units_rma;
        CREATE INDEX units_rma ON units (rma) WHERE rma IS NOT NULL;
        "#,
        ),
    ])
}
