"""Tests of course_lib.data: the toy Chinese -> English corpus and its word-order phenomena.

The grammar's tables are restated here by hand (verb forms, measure words), so the tests check
the sentences against what English grammar requires, not against the generator's own tables.
"""

import random

import pytest

from course_lib.data import NOTES_EXAMPLES, SentencePair, TranslationCorpus, generate_pair, make_translation_corpus

# Chinese verb -> (base, third person singular, past), as English requires.
VERB_FORMS = {
    "爱": ("love", "loves", "loved"),
    "喜欢": ("like", "likes", "liked"),
    "帮助": ("help", "helps", "helped"),
    "看见": ("see", "sees", "saw"),
    "买": ("buy", "buys", "bought"),
    "吃": ("eat", "eats", "ate"),
    "喝": ("drink", "drinks", "drank"),
    "读": ("read", "reads", "read"),
    "画": ("draw", "draws", "drew"),
    "去": ("go", "goes", "went"),
}
MEASURE_WORDS = {"只", "本", "个"}  # no English counterpart at all
CONTAINERS = {"杯": ("cup", "cups"), "瓶": ("bottle", "bottles"), "加仑": ("gallon", "gallons")}
TIME_WORDS = {"昨天": ("yesterday",), "上周": ("last", "week"), "明天": ("tomorrow",),
              "下周": ("next", "week"), "每天": ("every", "day")}
PLACE_NOUNS = {"公园": "park", "商店": "store", "厨房": "kitchen", "图书馆": "library", "学校": "school", "家": "home"}


@pytest.fixture(scope="module")
def corpus() -> TranslationCorpus:
    return make_translation_corpus(seed=0)  # the course's default corpus (6000 pairs, well under a second)


@pytest.fixture(scope="module")
def all_pairs(corpus) -> list[SentencePair]:
    return corpus.train + corpus.validation + corpus.test


def crossing(pair: SentencePair) -> bool:
    """Two English words j1 < j2 aligned to Chinese words i1 > i2: the order differs."""
    aligned = [(j, i) for j, i in enumerate(pair.alignment) if i >= 0]
    return any(j1 < j2 and i1 > i2 for j1, i1 in aligned for j2, i2 in aligned)


def en_aligned_to(pair: SentencePair, i: int) -> list[int]:
    return [j for j, a in enumerate(pair.alignment) if a == i]


# ---------------------------------------------------------------------------
# Determinism, sizes, no overlap
# ---------------------------------------------------------------------------

def test_same_seed_same_corpus_different_seed_different():
    a = make_translation_corpus(num_sentences=500, seed=3)
    b = make_translation_corpus(num_sentences=500, seed=3)
    c = make_translation_corpus(num_sentences=500, seed=4)
    assert (a.train, a.validation, a.test) == (b.train, b.validation, b.test)
    assert (a.zh_words, a.en_words) == (b.zh_words, b.en_words)
    assert a.train != c.train and a.validation != c.validation
    assert a.seed == 3 and c.seed == 4
    # the module-level random state plays no part
    random.seed(1)
    d = make_translation_corpus(num_sentences=500, seed=3)
    assert d.train == a.train


@pytest.mark.parametrize("n,split,sizes", [
    (6000, (0.8, 0.1, 0.1), (4800, 600, 600)),
    (1000, (0.8, 0.1, 0.1), (800, 100, 100)),
    (500, (0.6, 0.2, 0.2), (300, 100, 100)),
    (100, (0.5, 0.3, 0.2), (50, 30, 20)),
])
def test_sizes_follow_num_sentences_and_split(n, split, sizes):
    c = make_translation_corpus(num_sentences=n, seed=0, split=split) if n != 6000 else make_translation_corpus()
    assert (len(c.train), len(c.validation), len(c.test)) == sizes
    assert all(isinstance(p, SentencePair) for p in c.train + c.validation + c.test)


def test_no_sentence_shared_within_or_across_splits(all_pairs, corpus):
    zh = [p.zh for p in all_pairs]
    en = [p.en for p in all_pairs]
    assert len(set(zh)) == len(zh) == 6000
    assert len(set(en)) == len(en)
    for a, b in ((corpus.train, corpus.test), (corpus.train, corpus.validation), (corpus.validation, corpus.test)):
        assert not {p.zh for p in a} & {p.zh for p in b}
        assert not {p.en for p in a} & {p.en for p in b}


def test_notes_examples_are_in_the_test_split(corpus):
    assert ("我", "爱", "你") in {p.zh for p in NOTES_EXAMPLES}
    for split in (make_translation_corpus(num_sentences=200, seed=7), corpus):
        for ex in NOTES_EXAMPLES:
            assert ex in split.test
            assert ex not in split.train and ex not in split.validation
    i_love_you = next(p for p in corpus.test if p.zh == ("我", "爱", "你"))
    assert i_love_you.en == ("I", "love", "you") and i_love_you.alignment == (0, 1, 2)


def test_notes_examples_are_produced_by_the_grammar():
    rng = random.Random(0)
    wanted = {ex.zh: ex for ex in NOTES_EXAMPLES[:2]}  # 我 爱 你; 那 个 男人 昨天 去 了 商店
    found = {}
    gallon = None  # the third example's pattern: SUBJ [TIME] [PLACE] 买 了 一 加仑 DRINK
    for _ in range(50_000):
        p = generate_pair(rng)
        if p.zh in wanted:
            found[p.zh] = p
        if gallon is None and p.zh[-5:-1] == ("买", "了", "一", "加仑"):
            gallon = p
        if len(found) == len(wanted) and gallon is not None:
            break
    for zh, ex in wanted.items():
        assert found.get(zh) == ex, zh  # the same English, alignment and reordered flags
    # 他 买 了 一 加仑 牛奶 -> he bought a gallon of milk: the same shape, word for word
    assert gallon is not None
    ex = NOTES_EXAMPLES[2]
    verb_at = len(gallon.zh) - 5
    j = gallon.en.index("bought")
    assert gallon.en[j:j + 5][:4] == ex.en[1:5]
    assert gallon.alignment[j:j + 5] == tuple(verb_at - 1 + i if i >= 0 else -1 for i in ex.alignment[1:])
    assert not any(gallon.reordered[j:j + 5])


def test_every_word_is_in_the_word_lists(all_pairs, corpus):
    zh_words, en_words = set(corpus.zh_words), set(corpus.en_words)
    assert len(zh_words) == len(corpus.zh_words) and len(en_words) == len(corpus.en_words)
    for p in all_pairs:
        assert set(p.zh) <= zh_words, p
        assert set(p.en) <= en_words, p


def test_alignment_in_range_and_reordered_words_aligned(all_pairs):
    for p in all_pairs:
        assert len(p.alignment) == len(p.en) == len(p.reordered)
        assert all(i == -1 or 0 <= i < len(p.zh) for i in p.alignment), p
        assert all(p.alignment[j] >= 0 for j, r in enumerate(p.reordered) if r), p
    assert any(any(p.reordered) for p in all_pairs)


def test_sentence_pair_checks_lengths():
    with pytest.raises(ValueError, match="alignment"):
        SentencePair(("我",), ("I", "am"), (0,), (False,))


# ---------------------------------------------------------------------------
# The word-order phenomena
# ---------------------------------------------------------------------------

def test_a_large_share_of_test_pairs_has_crossing_alignments(corpus):
    share = sum(map(crossing, corpus.test)) / len(corpus.test)
    assert share > 0.5, share
    assert not crossing(NOTES_EXAMPLES[0]) and crossing(NOTES_EXAMPLES[1])


def test_time_phrases_move_to_the_end(all_pairs, corpus):
    seen = set()
    for p in all_pairs:
        times = [w for w in p.zh if w in TIME_WORDS]
        assert len(times) <= 1, p
        if times:
            en = TIME_WORDS[times[0]]
            assert p.en[-len(en):] == en, p  # the English time phrase is last
            i = p.zh.index(times[0])
            assert all(p.alignment[-k] == i for k in range(1, len(en) + 1)), p
            assert crossing(p), p
            seen.add(times[0])
    assert seen == set(TIME_WORDS)
    assert any("昨天" in p.zh and p.en[-1] == "yesterday" for p in corpus.test)


def test_place_phrases(all_pairs):
    count = 0
    for p in all_pairs:
        if "在" not in p.zh:
            continue
        count += 1
        i = p.zh.index("在")
        place = p.zh[i + 1]
        (j,) = en_aligned_to(p, i)
        noun = PLACE_NOUNS[place]
        if noun in ("school", "home"):
            assert p.en[j:j + 2] == ("at", noun), p
        else:
            assert p.en[j:j + 3] == ("in", "the", noun), p
            assert p.alignment[j + 1] == -1
        if p.zh[i + 2:i + 3] == ("里",):
            assert noun in ("park", "store", "kitchen")
            assert i + 2 not in p.alignment  # 里 ("inside") has no English word of its own
        assert en_aligned_to(p, i + 1) == [j + (1 if noun in ("school", "home") else 2)]
        # the place comes before the verb in Chinese and after it in English
        verb_at = next(k for k in range(i + 2, len(p.zh)) if p.zh[k] in VERB_FORMS)
        (verb_j,) = en_aligned_to(p, verb_at)
        assert verb_j < j and verb_at > i
    assert count > 500


def test_relative_clauses(all_pairs):
    count = 0
    for p in all_pairs:
        for d, w in enumerate(p.zh):
            if w != "的" or p.zh[d - 1] not in VERB_FORMS:
                continue
            # SUBJ VERB 的 N  ->  the N that SUBJ VERB-ed
            count += 1
            (j,) = en_aligned_to(p, d)
            assert p.en[j] == "that", p
            assert p.en[j - 2] == "the" and p.alignment[j - 2] == -1, p
            assert p.alignment[j - 1] == d + 1, p  # the noun, moved in front of its clause
            assert p.alignment[j + 1] == d - 2, p  # the clause's subject
            assert p.alignment[j + 2] == d - 1, p
            assert p.en[j + 2] == VERB_FORMS[p.zh[d - 1]][2], p  # past form
            assert p.reordered[j - 1] and not p.reordered[j], p
            assert crossing(p)
    assert count > 300


def test_measure_words_have_no_english_word(all_pairs):
    seen = set()
    for p in all_pairs:
        for i, w in enumerate(p.zh):
            if w in MEASURE_WORDS:
                seen.add(w)
                assert i not in p.alignment, p
            if w in CONTAINERS:  # 一 杯 茶 -> a cup of tea: the container becomes a noun, "of" is new
                seen.add(w)
                (j,) = en_aligned_to(p, i)
                assert p.en[j] in CONTAINERS[w] and p.en[j + 1] == "of" and p.alignment[j + 1] == -1, p
    assert seen == MEASURE_WORDS | set(CONTAINERS)
    three_cats = [p for p in all_pairs if "三" in p.zh and "只" in p.zh]
    assert three_cats and all("three" in p.en for p in three_cats)


def test_tense(all_pairs):
    counts = {"past": 0, "future": 0, "present": 0}
    for p in all_pairs:
        verbs = [i for i, w in enumerate(p.zh) if w in VERB_FORMS and p.zh[i + 1:i + 2] != ("的",)]
        assert len(verbs) == 1, p  # one main verb (a relative clause's verb precedes 的)
        v = verbs[0]
        base, third, past = VERB_FORMS[p.zh[v]]
        (j,) = en_aligned_to(p, v)
        if "了" in p.zh:
            assert p.zh.index("了") == v + 1 and (v + 1) not in p.alignment
            assert p.en[j] == past, p
            counts["past"] += 1
        elif "会" in p.zh:
            w = p.zh.index("会")
            assert en_aligned_to(p, w) == [j - 1] and p.en[j - 1] == "will", p
            assert p.en[j] == base, p
            counts["future"] += 1
        else:
            assert p.en[j] in (base, third), p
            third_person = p.en[0] in ("he", "she", "my", "the")
            assert p.en[j] == (third if third_person else base), p
            counts["present"] += 1
        if any(w in p.zh for w in ("昨天", "上周")):
            assert "了" in p.zh
        if any(w in p.zh for w in ("明天", "下周")):
            assert "会" in p.zh and "will" in p.en
    assert min(counts.values()) > 500, counts


def test_a_and_an_agree_with_the_next_word(all_pairs):
    an_before, a_before = set(), set()
    for p in all_pairs:
        for j, w in enumerate(p.en[:-1]):
            nxt = p.en[j + 1]
            if w == "an":
                assert nxt[0] in "aeiou", p
                an_before.add(nxt)
            elif w == "a":
                assert nxt[0] not in "aeiou", p
                a_before.add(nxt)
        assert p.en[-1] not in ("a", "an")
    assert {"apple", "orange"} <= an_before
    assert {"red", "white", "black", "cat", "book", "cup", "cake"} <= a_before
    # "a red book": the article follows the adjective, not the noun
    assert any(" ".join(p.en).find("a red ") >= 0 for p in all_pairs)


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"num_sentences": 99},
    {"num_sentences": 0},
    {"num_sentences": 500.0},
    {"split": (0.8, 0.1, 0.2)},
    {"split": (0.9, 0.1, 0.0)},
    {"split": (0.8, 0.2)},
    {"split": (1.2, -0.1, -0.1)},
])
def test_bad_arguments(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        make_translation_corpus(**kwargs)


def test_test_split_too_small_for_the_notes_examples():
    # 2% of 100 sentences cannot hold the notes' three examples
    with pytest.raises(ValueError, match="split"):
        make_translation_corpus(num_sentences=100, split=(0.9, 0.08, 0.02))
    # just enough room: the test split is exactly the three examples, the other sizes as asked
    c = make_translation_corpus(num_sentences=100, split=(0.9, 0.07, 0.03))
    assert (len(c.train), len(c.validation), len(c.test)) == (90, 7, 3)


def test_max_objects_makes_longer_sentences_and_keeps_the_default_corpus():
    default = make_translation_corpus(num_sentences=300, seed=2)
    same = make_translation_corpus(num_sentences=300, seed=2, max_objects=1)
    assert default.train == same.train and default.zh_words == same.zh_words and "和" not in default.zh_words
    long = make_translation_corpus(num_sentences=300, seed=2, max_objects=3)
    assert "和" in long.zh_words and "and" in long.en_words
    pairs = long.train + long.validation + long.test
    assert max(len(p.zh) for p in pairs) > max(len(p.zh) for p in default.train + default.test) + 3
    joined = [p for p in pairs if "和" in p.zh]
    assert joined and all("和" not in p.zh for p in default.train)
    for p in joined:  # every "and" is aligned to a 和, and every 和 is translated by one "and"
        ands = [j for j, w in enumerate(p.en) if w == "and"]
        assert sorted(p.alignment[j] for j in ands) == [i for i, w in enumerate(p.zh) if w == "和"]
        assert p.zh.count("和") <= 2  # at most three objects
    zh, en = set(long.zh_words), set(long.en_words)
    assert all(set(p.zh) <= zh and set(p.en) <= en for p in pairs)


@pytest.mark.parametrize("value, error", [(0, ValueError), (1.5, ValueError), (True, ValueError), ("2", ValueError)])
def test_max_objects_must_be_a_positive_int(value, error):
    with pytest.raises(error, match="max_objects"):
        make_translation_corpus(num_sentences=200, max_objects=value)
    with pytest.raises(error, match="max_objects"):
        generate_pair(random.Random(0), max_objects=value)
