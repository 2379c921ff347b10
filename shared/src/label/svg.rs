//! Code 128 as SVG, for the printable return label: the same symbology and the same encoding
//! (code set C for digit runs, [`super::code128`]) the ZPL label asks the printer for,
//! so a receiving station scans either.

use super::code128::{symbols, Code128Error, PATTERNS, QUIET_MODULES};

/// Widest barcode drawn with two pixels a module; wider ones get one pixel a module. One CSS
/// pixel is 0.26 mm on paper, the narrowest module a handheld scanner reads reliably, so the
/// longest RMA (64 characters, 759 modules with quiet zones: 7.9 in) still fits the width of an
/// A4 or Letter sheet printed at small margins; shorter ones get the sturdier 0.53 mm module.
pub const WIDE_SVG_PX_MAX: u32 = 720;

/// An SVG of `value`'s barcode at its natural size (see [`WIDE_SVG_PX_MAX`]), `height_px` tall,
/// with its quiet zones. Takes every id the domain accepts (up to 64 characters).
pub fn page_svg(value: &str, height_px: u32) -> Result<String, Code128Error> {
    let modules = super::code128::symbol_modules(value)? + 2 * QUIET_MODULES;
    let module_px = if modules * 2 <= WIDE_SVG_PX_MAX { 2 } else { 1 };
    svg(value, module_px, height_px)
}

/// An SVG of `value`'s barcode, `module_px` wide per module and `height_px` tall, with its quiet
/// zones.
pub fn svg(value: &str, module_px: u32, height_px: u32) -> Result<String, Code128Error> {
    let mut x = QUIET_MODULES;
    let mut rects = String::new();
    for symbol in symbols(value)? {
        for (i, w) in PATTERNS[usize::from(symbol)].bytes().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                rects.push_str(&format!(
                    r#"<rect x="{}" y="0" width="{}" height="{height_px}"/>"#,
                    x * module_px,
                    w * module_px
                ));
            }
            x += w;
        }
    }
    let width = (x + QUIET_MODULES) * module_px;
    // Named for screen readers by what it encodes; Code 128 carries any printable ASCII.
    let label: String = value
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height_px}" viewBox="0 0 {width} {height_px}" shape-rendering="crispEdges" role="img" aria-label="Code 128: {label}"><rect width="{width}" height="{height_px}" fill="#fff"/><g fill="#000">{rects}</g></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_is_as_wide_as_the_symbol_and_its_quiet_zones() {
        let value = "RMA-0000000001-X";
        let modules = crate::label::code128::symbol_modules(value).unwrap() + 2 * QUIET_MODULES;
        let svg = svg(value, 2, 80).unwrap();
        assert!(
            svg.starts_with(&format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}""#,
                modules * 2
            )),
            "{svg}"
        );
        // The longest RMA the API accepts has a barcode too.
        assert!(page_svg(&"R".repeat(64), 80)
            .unwrap()
            .contains(r#"width="759""#));
        assert_eq!(super::svg("", 2, 80), Err(Code128Error::Empty));
    }

    #[test]
    fn the_svg_is_named_by_what_it_encodes_escaped() {
        let svg = svg("A&B<\"C", 2, 80).unwrap();
        assert!(
            svg.contains(r#"aria-label="Code 128: A&amp;B&lt;&quot;C""#),
            "{svg}"
        );
    }
}
