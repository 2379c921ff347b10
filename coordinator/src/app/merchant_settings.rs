//! A merchant's portal and message settings as they stand: the config's entry with the
//! stored settings in place of its own (`store::merchant_portal`), read afresh by every page
//! and message so a change made over the API applies without a restart.

use tracing::warn;

use super::AppError;
use crate::merchants::MerchantEntry;
use crate::portal_settings::{self, PortalSettings};
use crate::store::{self, merchant_portal};
use crate::{CoordinatorError, Ctx};

/// Stores the config's settings of every configured merchant (the API's stay where it set
/// them). Run at start.
pub async fn seed_from_config(
    db: &modori_runtime::sqlite::Db,
    merchants: &[MerchantEntry],
    now_ms: i64,
) -> Result<(), CoordinatorError> {
    let rows: Vec<(String, String)> = merchants
        .iter()
        .filter_map(|m| {
            serde_json::to_string(&PortalSettings::of(m))
                .ok()
                .map(|json| (m.id.clone(), json))
        })
        .collect();
    db.call(move |c| -> Result<(), store::StoreError> {
        for (merchant, json) in &rows {
            merchant_portal::seed(c, merchant, json, now_ms)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// The merchant as its customers see it now: config, then the stored settings over it.
/// A merchant the config does not list has only its id.
pub async fn entry(ctx: &Ctx, merchant: &str) -> Result<MerchantEntry, CoordinatorError> {
    let configured = ctx
        .config
        .merchants
        .iter()
        .find(|m| m.id == merchant)
        .cloned()
        .unwrap_or_else(|| MerchantEntry {
            id: merchant.to_owned(),
            ..MerchantEntry::default()
        });
    let m = merchant.to_owned();
    let Some(json) = ctx.db.call(move |c| merchant_portal::get(c, &m)).await? else {
        return Ok(configured);
    };
    match serde_json::from_str::<PortalSettings>(&json) {
        Ok(settings) => Ok(settings.applied_to(configured)),
        Err(error) => {
            // Only this coordinator writes the row, checked; an unreadable one is shown as
            // the config has it rather than refusing the merchant's customers.
            warn!(merchant, error = %error, "stored portal settings unreadable; using the config's");
            Ok(configured)
        }
    }
}

/// The settings in force for `merchant`.
pub async fn get(ctx: &Ctx, merchant: &str) -> Result<PortalSettings, AppError> {
    Ok(PortalSettings::of(&entry(ctx, merchant).await?))
}

/// Checks and stores a merchant's settings, which win over the config's from now on.
pub async fn put(ctx: &Ctx, merchant: &str, settings: PortalSettings) -> Result<(), AppError> {
    portal_settings::check(&settings)
        .map_err(|(field, message)| AppError::Invalid { field, message })?;
    let json = serde_json::to_string(&settings).map_err(|e| AppError::internal(&e))?;
    let (m, now_ms) = (merchant.to_owned(), ctx.clock.now_ms());
    ctx.db
        .call(move |c| merchant_portal::put(c, &m, &json, now_ms))
        .await?;
    tracing::info!(merchant, "portal settings stored");
    Ok(())
}
