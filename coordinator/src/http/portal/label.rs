//! A return's label as a PDF the customer prints at home or at a konbini's multi-copier: on
//! A4, or on a 4×6 in label sheet. The Code 128 barcode of the RMA is drawn as vector bars
//! laid out by the label's own encoder (`modori_shared::label::code128::bars`), the same
//! symbol the sites' ZPL labels and the counter's page carry, so a receiving station scans
//! any of them.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use modori_shared::label::code128;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use serde::Deserialize;

use super::scan::token_return;
use super::{merchant_of, portal_page, render};
use crate::http::error::{ApiError, ApiPath};
use crate::store::lifecycle;
use crate::Ctx;

/// Points per millimetre (a point is 1/72 in).
const PT_PER_MM: f32 = 72.0 / 25.4;
/// Widest module of the barcode, in mm: sturdy for any scanner.
const MODULE_MM_MAX: f32 = 0.5;
/// Narrowest module, in mm: what a handheld scanner still reads from a home printer.
const MODULE_MM_MIN: f32 = 0.25;
/// Lines of the return listed on the label at most; more are counted, not listed.
pub const LABEL_LINES_MAX: usize = 8;

/// The sheet a label is printed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sheet {
    A4,
    /// 4×6 in, the thermal label of parcel carriers.
    Label4x6,
}

impl Sheet {
    fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None | Some("a4") => Some(Self::A4),
            Some("4x6") => Some(Self::Label4x6),
            _ => None,
        }
    }

    /// Width and height, in points.
    pub fn size_pt(self) -> (f32, f32) {
        match self {
            Self::A4 => (210.0 * PT_PER_MM, 297.0 * PT_PER_MM),
            Self::Label4x6 => (4.0 * 72.0, 6.0 * 72.0),
        }
    }

    fn margin_pt(self) -> f32 {
        match self {
            Self::A4 => 15.0 * PT_PER_MM,
            Self::Label4x6 => 5.0 * PT_PER_MM,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::A4 => "a4",
            Self::Label4x6 => "4x6",
        }
    }
}

pub fn router() -> Router<Arc<Ctx>> {
    Router::new().route("/r/{merchant}/s/{token}/label.pdf", get(label_pdf))
}

#[derive(Deserialize)]
struct LabelQuery {
    size: Option<String>,
}

async fn label_pdf(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
    Query(q): Query<LabelQuery>,
) -> Result<Response, ApiError> {
    let merchant = merchant_of(merchant)?;
    let Some(sheet) = Sheet::parse(q.size.as_deref()) else {
        return Err(ApiError::invalid_field("size", "a label is a4 or 4x6"));
    };
    let Some(ret) = token_return(&ctx, Some(merchant.to_string()), &token).await? else {
        return Ok(portal_page(
            StatusCode::NOT_FOUND,
            render::unknown_link(render::Lang::Ja),
        ));
    };
    let site = ctx
        .fleet
        .sites
        .iter()
        .find(|s| s.id.as_str() == ret.site)
        .map(|s| s.name.clone())
        .filter(|n| printable_ascii(n))
        .unwrap_or_else(|| ret.site.clone());
    let pdf = label(sheet, &ret, &site).map_err(|e| ApiError::internal(&e))?;
    let mut res = pdf.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let disposition = format!("inline; filename=\"{}-{}.pdf\"", ret.rma, sheet.name());
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Whether the PDF's standard font can show `s` as it is (printable ASCII).
fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// `s` with what the standard font cannot show replaced, and PDF string escapes kept safe by
/// `pdf_writer::Str`.
fn shown(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// The label of `ret`, to the site `site`, on `sheet`.
pub fn label(
    sheet: Sheet,
    ret: &lifecycle::Return,
    site: &str,
) -> Result<Vec<u8>, code128::Code128Error> {
    let (bars, modules) = code128::bars(&ret.rma)?;
    let (w, h) = sheet.size_pt();
    let m = sheet.margin_pt();
    let usable = w - 2.0 * m;
    let module =
        (usable / modules as f32).clamp(MODULE_MM_MIN * PT_PER_MM, MODULE_MM_MAX * PT_PER_MM);
    let bar_h = 22.0 * PT_PER_MM;

    let mut c = Content::new();
    let mut y = h - m;
    let text = |c: &mut Content, size: f32, y: f32, s: &str| {
        c.begin_text();
        c.set_font(Name(b"F1"), size);
        c.next_line(m, y);
        c.show(Str(&shown(s)));
        c.end_text();
    };
    y -= 20.0;
    text(&mut c, 20.0, y, "RETURN / HENPIN");
    y -= 22.0;
    text(&mut c, 14.0, y, &format!("TO: {site}"));
    y -= 16.0;
    text(&mut c, 10.0, y, &format!("Site {}", ret.site));
    // The barcode, its quiet zones inside the margins, centred.
    y -= 12.0 + bar_h;
    let x0 = m + (usable - modules as f32 * module).max(0.0) / 2.0;
    for (start, width) in &bars {
        c.rect(
            x0 + *start as f32 * module,
            y,
            *width as f32 * module,
            bar_h,
        );
    }
    c.set_fill_gray(0.0);
    c.fill_nonzero();
    y -= 18.0;
    text(&mut c, 14.0, y, &ret.rma);
    y -= 20.0;
    for l in ret.lines.iter().take(LABEL_LINES_MAX) {
        text(&mut c, 10.0, y, &format!("{} x {}", l.sku, l.qty));
        y -= 13.0;
    }
    if ret.lines.len() > LABEL_LINES_MAX {
        let more = ret.lines.len() - LABEL_LINES_MAX;
        text(&mut c, 10.0, y, &format!("and {more} more line(s)"));
        y -= 13.0;
    }
    y -= 8.0;
    text(
        &mut c,
        9.0,
        y,
        "Attach this label to the parcel, barcode facing out.",
    );

    let (catalog, tree, page, font, contents) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
    );
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, w, h));
    p.parent(tree);
    p.contents(contents);
    p.resources().fonts().pair(Name(b"F1"), font);
    p.finish();
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    pdf.stream(contents, &c.finish());
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_standard_font_cannot_show_is_replaced() {
        assert_eq!(shown("Kobe 1 (RMA)"), b"Kobe 1 (RMA)");
        assert_eq!(shown("千葉A"), b"??A");
        assert!(!printable_ascii("千葉"));
    }

    #[test]
    fn the_sheets_are_a4_and_four_by_six_inches() {
        let (w, h) = Sheet::A4.size_pt();
        assert!((w - 595.3).abs() < 0.1 && (h - 841.9).abs() < 0.1);
        assert_eq!(Sheet::Label4x6.size_pt(), (288.0, 432.0));
        assert_eq!(Sheet::parse(Some("letter")), None);
    }
}
