"""Every registered exercise's solution passes its own checker, and so does the library's version.

The solutions shown to learners re-implement library functions (attend, causal_mask,
mask_tokens, FolderTextDataset, ...) as self-contained code. Running both through the
exercise's checker keeps them in step: a solution or a library change that breaks the
exercise's contract fails here. The test lists come from the registry, so a new exercise
is tested as soon as it is registered, and fails until it says what its library version is.
"""

import importlib
import pathlib

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import DotScore, attend, causal_mask, scaled_dot_product_attention
from course_lib.batching import IGNORE_INDEX
from course_lib.bert import mask_tokens
from course_lib.data.folders import FolderTextDataset
from course_lib.exercises import check, exercise_names, get_exercise
from course_lib.gpt import GPT, GPTConfig, GPTForClassification

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def soft_attention_by_attend(H, q):
    """soft_attention(H (n, d), q (d,)) -> (a (n,), context (d,)) with the library's attend.

    attend takes the query first and returns (context, weights); DotScore is the exercise's
    plain dot-product score s(h_i, q) = h_i · q (attend's default divides by √d).
    """
    context, a = attend(q, H, score=DotScore())
    return a, context


def mlm_masking_by_mask_tokens(input_ids, vocab_size, mask_token_id, special_token_ids, generator):
    """mlm_masking with the library's mask_tokens (keyword arguments, default 15%)."""
    return mask_tokens(input_ids, vocab_size=vocab_size, mask_token_id=mask_token_id,
                       special_token_ids=special_token_ids, generator=generator)


# The library's version of each exercise, called like the exercise.
LIBRARY_VERSIONS = {
    "soft_attention": soft_attention_by_attend,
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "causal_mask": causal_mask,
    "mlm_masking": mlm_masking_by_mask_tokens,
    "folder_dataset": FolderTextDataset,
}

# Exercises with no library function of the same signature, and why.
NO_LIBRARY_VERSION = {
    "gpt_combined_loss": (
        "GPTForClassification computes L3 from token ids: it makes its own class and LM logits and "
        "its own shifted targets, so it cannot take the exercise's arbitrary logits and targets. "
        "test_gpt_combined_loss_solution_is_the_classifier_loss checks the other way round."
    ),
}


# Each notebook's newer exercises declare theirs in tests/exercise_versions_<notebook>.py
# (dicts LIBRARY_VERSIONS and NO_LIBRARY_VERSION, same meaning as above), merged here.
for _path in sorted(pathlib.Path(__file__).parent.glob("exercise_versions_*.py")):
    _module = importlib.import_module(_path.stem)
    for _ours, _theirs in ((LIBRARY_VERSIONS, _module.LIBRARY_VERSIONS), (NO_LIBRARY_VERSION, _module.NO_LIBRARY_VERSION)):
        assert not set(_ours) & set(_theirs), f"{_path.name} declares an exercise twice: {set(_ours) & set(_theirs)}"
        _ours.update(_theirs)


def run_check(name, fn, capsys):
    """(verdict, printed text) of check(name, fn)."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


def test_every_exercise_says_what_its_library_version_is():
    names = set(exercise_names())
    unknown = names - set(LIBRARY_VERSIONS) - set(NO_LIBRARY_VERSION)
    assert not unknown, (
        f"add {sorted(unknown)} to LIBRARY_VERSIONS (the library function, adapted to the exercise's "
        "signature) or to NO_LIBRARY_VERSION (why there is none)"
    )
    assert not set(LIBRARY_VERSIONS) & set(NO_LIBRARY_VERSION)
    assert set(LIBRARY_VERSIONS) | set(NO_LIBRARY_VERSION) <= names  # no stale entries


@pytest.mark.filterwarnings("ignore:The use of `x.T`")
@pytest.mark.parametrize("name", exercise_names())
def test_solution_passes_its_own_checker(name, capsys):
    ok, out = run_check(name, get_exercise(name).load_solution(), capsys)
    assert ok, out
    assert out == f"✅ {name}: correct! Your function passes all the test inputs.\n"


@pytest.mark.parametrize("name", [n for n in exercise_names() if n in LIBRARY_VERSIONS])
def test_library_version_passes_the_checker(name, capsys):
    ok, out = run_check(name, LIBRARY_VERSIONS[name], capsys)
    assert ok, out


def test_gpt_combined_loss_solution_is_the_classifier_loss():
    """The solution, fed GPTForClassification's own logits and targets, gives its L3 = L2 + λ L1."""
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=23, block_size=12, n_layer=1, n_head=2, n_embd=16))
    clf = GPTForClassification(gpt, num_classes=3).eval()
    idx = torch.randint(1, 23, (3, 8))
    labels, lengths = torch.tensor([0, 2, 1]), torch.tensor([8, 5, 3])
    with torch.no_grad():
        class_logits, l3 = clf(idx, labels=labels, lengths=lengths, lm_weight=0.5)
        lm_logits = gpt.lm_head(gpt.hidden_states(idx))[:, :-1]  # predicts token t + 1 from h_t
    targets = idx[:, 1:].clone()
    for row, length in enumerate(lengths.tolist()):
        targets[row, length - 1:] = IGNORE_INDEX  # no target past the last real token
    solution = get_exercise("gpt_combined_loss").load_solution()
    expected = solution(class_logits, labels, lm_logits, targets, 0.5)
    assert l3.item() == pytest.approx(expected.item(), rel=1e-5)
    assert l3.item() != pytest.approx(F.cross_entropy(class_logits, labels).item(), rel=1e-3)  # L1 counts
