"""Library versions of the newer exercises of notebooks 03 (GPT), 04 (BERT) and 05 (PyTorch basics).

Merged into tests/test_exercise_solutions.py: each library function, adapted to the exercise's
signature, must pass the exercise's checker.
"""

from course_lib.data.folders import pad_collate
from course_lib.data.images import to_chw_float
from course_lib.gpt import next_token_probs
from course_lib.tokenizers import SPECIAL_TOKENS, WordPieceTokenizer


def wordpiece_by_tokenizer(word, vocab, unk="[UNK]"):
    """wordpiece with WordPieceTokenizer: the vocabulary plus BERT's special tokens, no lower-casing.

    On one word of letters (the checker's words), tokenize() is the tokenizer's WordPiece step alone.
    Its unknown token is always "[UNK]"; the exercise's unk argument replaces it.
    """
    tokenizer = WordPieceTokenizer(sorted(set(vocab) | set(SPECIAL_TOKENS)), lowercase=False)
    return [unk if piece == "[UNK]" else piece for piece in tokenizer.tokenize(word)]


def bert_input_by_encode(tokens_a, tokens_b):
    """bert_input with WordPieceTokenizer.encode, which lays out [CLS] A [SEP] (B [SEP]) and the segment ids.

    encode takes text, so each token is stood in for by a word of its own ("t0", "t1", ...) that the
    tokenizer keeps whole, then read back.
    """
    tokens = list(tokens_a) + list(tokens_b or [])
    words = [f"t{i}" for i in range(len(tokens))]
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + words, lowercase=False)
    stand_in = dict(zip(words, tokens))
    text_a = " ".join(words[:len(tokens_a)])
    text_b = None if tokens_b is None else " ".join(words[len(tokens_a):])
    encoded = tokenizer.encode(text_a, text_b)
    out = [tokenizer.itos[i] for i in encoded["input_ids"]]
    return [stand_in.get(t, t) for t in out], encoded["token_type_ids"]


def pad_collate_by_library(batch, pad_id):
    """course_lib.data.folders.pad_collate returns (ids, lengths, labels); the exercise (ids, labels, lengths)."""
    ids, lengths, labels = pad_collate(batch, pad_id)
    return ids, labels, lengths


def hwc_to_chw_by_to_chw_float(image):
    """to_chw_float takes a PIL image or an (H, W, C) uint8 array, the exercise's (H, W, 3) arrays among them."""
    return to_chw_float(image)


LIBRARY_VERSIONS = {
    "next_token_distribution": next_token_probs,
    "bert_input": bert_input_by_encode,
    "wordpiece": wordpiece_by_tokenizer,
    "pad_collate": pad_collate_by_library,
    "hwc_to_chw": hwc_to_chw_by_to_chw_float,
}

NO_LIBRARY_VERSION = {
    "lm_inputs_and_targets": (
        "the shift lives inside course_lib.tasks.gpt.text_windows (random windows cut from one token stream) "
        "and GPTForClassification.forward (its own L1 targets): neither takes a (B, T + 1) batch of ids"
    ),
    "last_token_states": (
        "the gather h[arange(B), lengths - 1] is one line inside GPTForClassification.forward, not a function "
        "of its own"
    ),
    "training_step": (
        "course_lib.training.train runs the whole loop (batches, schedule, evaluation, logs); it has no "
        "function for one step with a given model, loss function and optimizer"
    ),
}
