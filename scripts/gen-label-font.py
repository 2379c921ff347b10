#!/usr/bin/env python3
"""Makes shared/fonts/label-font-jp.otf, the font label text is drawn with.

A subset of Noto Sans CJK JP Bold (SIL Open Font License 1.1, which allows subsetting and
redistribution): ASCII, half-width katakana and every character of Windows-31J (JIS X 0208 plus
the NEC and IBM extensions that Japanese names and addresses use, such as 髙 and 﨑). Bold because
thermal print thins strokes. Run again only to change the character set:

    python3 -m venv /tmp/fontvenv && /tmp/fontvenv/bin/pip install fonttools
    /tmp/fontvenv/bin/python scripts/gen-label-font.py \
        /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc shared/fonts/label-font-jp.otf
"""

import sys

from fontTools import subset
from fontTools.ttLib import TTCollection


def windows_31j_chars():
    chars = {chr(c) for c in range(0x20, 0x7F)}
    chars |= {chr(c) for c in range(0xFF61, 0xFFA0)}
    for lead in list(range(0x81, 0xA0)) + list(range(0xE0, 0xFD)):
        for trail in range(0x40, 0xFD):
            try:
                chars |= set(bytes([lead, trail]).decode("cp932"))
            except UnicodeDecodeError:
                pass
    return chars


def main(src, dst):
    collection = TTCollection(src)
    font = next(f for f in collection.fonts if f["name"].getDebugName(4) == "Noto Sans CJK JP Bold")
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(windows_31j_chars())))
    subsetter.subset(font)
    font.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
