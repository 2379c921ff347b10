//! Labels, drawn as data: ZPL jobs for a site's printers and Code 128 as SVG for the printable
//! return label. Pure functions of ids, names and media, so the agent's printer driver keeps
//! only the serial IO and the coordinator renders the same labels without a printer.

pub mod code128;
pub mod fields;
pub mod font;
pub mod layout;
pub mod svg;
pub mod zpl;
