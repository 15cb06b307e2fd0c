"""Rebuild course_lib/fonts/NotoSansSC-CourseSubset.otf from Debian's fonts-noto-cjk.

The course draws Chinese words in its figures. Few machines have a Chinese font that
matplotlib can find, so the course ships a subset of Noto Sans CJK SC (SIL Open Font
License 1.1, see course_lib/fonts/OFL.txt): the 3,755 most common characters (GB2312
level 1), every character of the notes and of the generated corpora, and CJK punctuation.

    apt-get install fonts-noto-cjk && python scripts/make_font_subset.py
"""

import pathlib

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
TARGET = ROOT / "course_lib" / "fonts" / "NotoSansSC-CourseSubset.otf"


def characters() -> set[str]:
    chars = set()
    for hi in range(0xB0, 0xD8):  # GB2312 level 1: rows 16-55
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    chars |= set("，。、；：？！“”‘’（）《》【】…—·")
    from course_lib.data import translation

    chars |= set(pathlib.Path(translation.__file__).read_text(encoding="utf-8"))
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        chars |= set(path.read_text(encoding="utf-8"))
    return {c for c in chars if ord(c) > 0x2E7F}  # CJK only; Latin comes from DejaVu Sans


def main() -> None:
    collection = TTCollection(SOURCE)
    font = next(f for f in collection.fonts if f["name"].getDebugName(1) == "Noto Sans CJK SC")
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(characters())))
    subsetter.subset(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(TARGET)
    print(f"{TARGET.relative_to(ROOT)}: {TARGET.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
