#!/usr/bin/env python3
"""Write tests/data/tokenizer/corpus.txt: the text the tokenizer tests encode (one text per
line, UTF-8, no carriage returns). Deterministic; rerun only to change the corpus, then rerun
scripts/make-tokenizer-fixtures.sh. Mixes this repository's own code and prose with
sentences in many scripts, emoji, numbers and whitespace runs."""
import glob
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rng = random.Random(20261127)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "It's a test: don't panic, we'll see what they've done, I'm sure you'd agree.",
    "THE CACHE'S KEYS AND VALUES ARE KEPT; IT'LL BE FINE.",
    "Größe, Straße, Fußgänger, Übermut und Ärger — ça va? Où est l'hôtel?",
    "El niño comió piñata; ¿qué más? ¡Olé!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Γαζέες καὶ μυρτιὲς δὲν θὰ βρῶ πιὰ στὸ χρυσαφὶ ξέφωτο.",
    "我能吞下玻璃而不伤身体。缓存的键和值保存在内存中。",
    "日本語のテキストです。ひらがな、カタカナ、漢字が混ざっています。",
    "키와 값은 캐시에 저장됩니다. 한국어 문장입니다.",
    "هذه جملة باللغة العربية، تحتوي على أرقام ١٢٣ و 456.",
    "זהו משפט בעברית עם ניקוד: שָׁלוֹם.",
    "यह हिंदी में एक वाक्य है। संख्या १२३४ है।",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ เช่นประโยคนี้",
    "Tiếng Việt có dấu: Tôi yêu lập trình.",
    "Türkçe: Işık, ığdır, şişe, çiçek, öğrenci.",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷🇯🇵 ✅",
    "Math: ∑_{i=1}^{n} x_i² ≤ ∞, α β γ δ, √2 ≈ 1.41421356, π ≈ 3.14159.",
    "Combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed) vs é à ö ñ (composed).",
    "Fullwidth: ＡＢＣ１２３！ and halfwidth ｶﾀｶﾅ.",
    "Numbers 0 1 12 123 1234 12345 123456 1234567 3.14 -42 +7 1e-5 0x1F 1_000_000",
    "Dates 2026-11-27, times 14:45:00, phone +1 (555) 123-4567, 50% off, $9.99, €10, ¥500",
    "URLs: https://example.com/path?query=1&x=y#frag and mail@example.org",
    "Punctuation!!! ??? ... --- *** ### @@@ &&& ||| ~~~ ``` ''' \"\"\"",
    "Quotes: “curly” ‘single’ «guillemets» „low“ 「括弧」",
    "Tabs\tbetween\twords\tand\t\tdouble tabs",
    "Mixed: kvcache 使用 ONNX Runtime 🚀 at 4297.4 tokens/s (batch 8: 2.03x).",
    "ẞ ß ǅ ǈ ǋ ǲ ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ",
    "Zero width: a\u200bb\u200cc\u200dd and no-break\u00a0space and thin\u2009space.",
    "Ελληνικά και English mixed with русский и 中文 and العربية in one line.",
]

CODE_GLOBS = ["src/*.c", "src/*.h", "src/modelgen/*.c", "tools/*.c", "tests/*.sh", "Makefile",
              "CMakeLists.txt"]
PROSE_GLOBS = ["README.md", "docs/PERFORMANCE.md"]


def lines_of(patterns):
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding="utf-8") as f:
                out.extend(line.rstrip("\n").replace("\r", "") for line in f)
    return [l for l in out if l.strip()]


def variant(s):
    choice = rng.randrange(8)
    if choice == 0:
        return s.upper()
    if choice == 1:
        return " " * rng.randrange(1, 6) + s + " " * rng.randrange(0, 4)
    if choice == 2:
        words = s.split(" ")
        return (" " * rng.randrange(2, 5)).join(words)
    if choice == 3:
        return s + " " + str(rng.randrange(10 ** rng.randrange(1, 12)))
    if choice == 4:
        other = SENTENCES[rng.randrange(len(SENTENCES))]
        return s + " " + other
    if choice == 5:
        return s.replace(" ", "\t")
    if choice == 6:
        return "".join(ch for ch in s if not ch.isspace())
    return s.lower()


def main():
    code = lines_of(CODE_GLOBS)
    prose = lines_of(PROSE_GLOBS)
    rng.shuffle(code)
    rng.shuffle(prose)
    lines = list(SENTENCES)
    lines += code[:1000]
    lines += prose[:300]
    lines += [variant(SENTENCES[rng.randrange(len(SENTENCES))]) for _ in range(800)]
    for _ in range(150):  # whitespace runs, digits, symbols, emoji alone
        parts = []
        for _ in range(rng.randrange(1, 8)):
            kind = rng.randrange(5)
            if kind == 0:
                parts.append(" " * rng.randrange(1, 12))
            elif kind == 1:
                parts.append(str(rng.randrange(10 ** rng.randrange(1, 15))))
            elif kind == 2:
                parts.append("".join(chr(rng.choice([0x1F600, 0x1F680, 0x2764, 0x1F44D, 0x1F9E0]) +
                                         rng.randrange(4)) for _ in range(rng.randrange(1, 5))))
            elif kind == 3:
                parts.append(rng.choice(["!", "?", "...", "--", "=>", "::", "{}", "[]", "()", "#"]))
            else:
                parts.append("\t" * rng.randrange(1, 4))
        lines.append("".join(parts))
    lines = [l for l in lines if l.strip()]
    with open(os.path.join(ROOT, "tests/data/tokenizer/corpus.txt"), "w", encoding="utf-8") as f:
        for l in lines:
            assert "\n" not in l and "\r" not in l
            f.write(l + "\n")
    print(len(lines), "lines")


if __name__ == "__main__":
    main()
