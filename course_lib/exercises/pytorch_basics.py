"""The exercises of notebook 05 (PyTorch basics): ``folder_dataset``, a torch Dataset over class folders;
``pad_collate``, a collate_fn that right-pads a batch; ``training_step``, one step of the training loop;
``hwc_to_chw``, an (H, W, 3) uint8 picture as a (3, H, W) float tensor.

Importing this module registers them.
"""

from __future__ import annotations

import copy
import numbers
import pathlib
import tempfile
from functools import partial
from typing import Callable

import torch
from torch import nn

from course_lib.exercises.engine import SEED, Case, Exercise, Failure, Mistake, call_learner, register, short_repr
from course_lib.exercises.output_checker import OutputChecker


# ---------------------------------------------------------------------------
# folder_dataset (notebook 05): a torch Dataset over class folders
# ---------------------------------------------------------------------------

def _same(value, want) -> bool:
    """``value == want`` as a bool, False when the comparison is ambiguous or fails (an array, ...)."""
    try:
        return bool(value == want)
    except Exception:
        return False


def _folder_checker(cls: Callable) -> Failure | None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        files = {"wasps": ["a wasp stings", "wasps are yellow"], "ants": ["ants carry leaves", "an ant", "ants dig"],
                 "bees": ["bees make honey"]}
        for name, texts in files.items():  # created in an unsorted order on purpose
            (root / name).mkdir()
            for i, text in enumerate(texts):
                (root / name / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
        (root / "ants" / "README.md").write_text("not a sample\n")
        classes = sorted(files)
        expected = sorted((text, classes.index(name)) for name, texts in files.items() for text in texts)
        dataset = call_learner(cls, root)
        missing = [m for m in ("__len__", "__getitem__") if not hasattr(type(dataset), m)]
        if missing:
            return Failure(f"folder_dataset(root) must give a dataset with __len__ and __getitem__, "
                           f"got {type(dataset).__name__} {short_repr(dataset, 40)}",
                           ("Write a class folder_dataset(Dataset) with __init__(self, root), __len__ and __getitem__.",))
        n = call_learner(len, dataset)
        if n == len(files):
            return Failure("len() counts the class folders, not the files",
                           ("__len__ must return the number of .txt files in all class folders together.",))
        if n == len(expected) + 1:
            return Failure("a file that is not a .txt sample was counted (README.md)",
                           ("Collect only the .txt files: (root / name).glob('*.txt').",))
        if n != len(expected):
            return Failure(f"len() is {n}, but there are {len(expected)} .txt files")
        items = [call_learner(dataset.__getitem__, i) for i in range(n)]
        bad = next((item for item in items if not (isinstance(item, tuple) and len(item) == 2)), items)
        if bad is not items:
            return Failure("each item must be a pair (text, label)", (f"got {short_repr(bad)}",))
        if any(isinstance(text, pathlib.Path) or (isinstance(text, str) and text.endswith(".txt")) for text, _ in items):
            return Failure("an item holds the file's path: read the file and return its text",
                           ("text = path.read_text(encoding='utf-8').strip()",))
        wrong = next((text for text, _ in items if not isinstance(text, str)), None)
        if wrong is not None or any(text is None for text, _ in items):
            return Failure("the texts are not the files' contents",
                           (f"each item's text must be a str, got {type(wrong).__name__} {short_repr(wrong)}",
                            "text = path.read_text(encoding='utf-8').strip()"))
        got = sorted(((text.strip(), label) for text, label in items), key=lambda pair: pair[0])
        if [t for t, _ in got] != [t for t, _ in expected]:
            return Failure("the texts are not the files' contents", (f"expected e.g. {expected[0][0]!r}",))
        if not all(_same(label, want) for (_, label), (_, want) in zip(got, expected)):
            return Failure("the labels do not follow the sorted folder names (ants = 0, bees = 1, wasps = 2)",
                           ("classes = sorted(folder names); the label of a file is classes.index(its folder's name).",))
    return None


_FOLDER_SOLUTION = '''\
import pathlib

from torch.utils.data import Dataset


class folder_dataset(Dataset):
    def __init__(self, root):
        root = pathlib.Path(root)
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())   # label = index in this list
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((root / name).glob("*.txt"))]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return path.read_text(encoding="utf-8").strip(), label
'''

register(
    Exercise(
        name="folder_dataset",
        signature="folder_dataset(root): a torch Dataset; len() = number of .txt files; item i = (text, label)",
        checker=_folder_checker,
        hints=(
            "In __init__, list the class folders (the sub-folders of root) and sort their names: the label of a "
            "class is its index in that sorted list. Then collect (path, label) for every .txt file in each folder.",
            "__len__ returns how many (path, label) pairs you collected; __getitem__(i) opens the i-th file and "
            "returns (its text, its label).",
            "pathlib makes it short: sorted(p.name for p in root.iterdir() if p.is_dir()), "
            "sorted((root / name).glob('*.txt')), path.read_text(encoding='utf-8').strip().",
        ),
        solution=_FOLDER_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# pad_collate (notebook 05): a collate_fn for sequences of different lengths
# ---------------------------------------------------------------------------

def _collate_reference(batch, pad_id):
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    ids = torch.full((len(batch), int(lengths.max())), pad_id, dtype=torch.long)
    for b, (seq, _) in enumerate(batch):
        ids[b, :len(seq)] = seq
    return ids, torch.tensor([label for _, label in batch], dtype=torch.long), lengths


def _collate_wrong(batch, pad_id, *, mistake):
    ids, labels, lengths = _collate_reference(batch, pad_id)
    if mistake == "left":
        left = torch.full_like(ids, pad_id)
        for b, (seq, _) in enumerate(batch):
            left[b, ids.shape[1] - len(seq):] = seq
        return left, labels, lengths
    if mistake == "zero":
        return _collate_reference(batch, 0)
    if mistake == "transposed":   # nn.utils.rnn.pad_sequence without batch_first=True
        return ids.T, labels, lengths
    if mistake == "lengths_max":
        return ids, labels, torch.full_like(lengths, ids.shape[1])
    if mistake == "lengths_minus":
        return ids, labels, lengths - 1
    if mistake == "library_order":
        return ids, lengths, labels
    raise ValueError(mistake)


def _collate_cases(g: torch.Generator) -> list[Case]:
    def case(lengths, pad_id, note=""):
        batch = [(torch.randint(2, 30, (n,), generator=g), int(torch.randint(0, 3, (1,), generator=g)))
                 for n in lengths]
        return Case(f"{len(lengths)} sequences of lengths {lengths}, pad_id={pad_id}", (batch, pad_id), note)

    return [
        case([3, 5, 2], 1),
        case([4, 1, 6, 4], 0),
        case([2, 2], 7, "all sequences of the same length: nothing to pad"),
        case([1], 1),
        case([5, 3, 4, 6, 2], 1),
    ]


_COLLATE_MISTAKES = [
    Mistake("the padding is on the left: this course pads on the right, so a row starts with its real tokens",
            "Write each sequence at the start of its row: ids[b, :len(seq)] = seq.",
            variants=(partial(_collate_wrong, mistake="left"),)),
    Mistake("the padding is 0 instead of pad_id", "Fill with pad_id: torch.full((B, T), pad_id, dtype=torch.long).",
            variants=(partial(_collate_wrong, mistake="zero"),)),
    Mistake("ids is (max n, B), time first: nn.utils.rnn.pad_sequence does that unless batch_first=True",
            "Pass batch_first=True (and padding_value=pad_id), or fill a (B, max n) tensor yourself.",
            variants=(partial(_collate_wrong, mistake="transposed"),)),
    Mistake("the lengths are wrong: they must be each sequence's own number of real tokens",
            "lengths = torch.tensor([len(seq) for seq, _ in batch]).",
            variants=(partial(_collate_wrong, mistake="lengths_max"),
                      partial(_collate_wrong, mistake="lengths_minus"))),
    Mistake("labels and lengths are swapped: return (ids, labels, lengths) in this order "
            "(course_lib's pad_collate returns ids, lengths, labels)",
            "return ids, labels, lengths",
            variants=(partial(_collate_wrong, mistake="library_order"),)),
]

_COLLATE_SOLUTION = '''\
import torch


def pad_collate(batch, pad_id):
    lengths = torch.tensor([len(ids) for ids, _ in batch])               # real tokens per sequence
    padded = torch.full((len(batch), int(lengths.max())), pad_id, dtype=torch.long)
    for b, (ids, _) in enumerate(batch):
        padded[b, :len(ids)] = ids                                        # right padding
    labels = torch.tensor([label for _, label in batch])                  # a tensor, not a list
    return padded, labels, lengths
'''


def _collate_checker(fn: Callable) -> Failure | None:
    failure = _COLLATE_OUTPUT_CHECKER(fn)
    for name in ("labels", "lengths"):
        if failure is not None and failure.summary == f"wrong type for {name}" \
                and "got list" in " ".join(failure.details):
            return Failure(f"{name} is a Python list: return a tensor of dtype torch.long",
                           (failure.details[0], f"{name} = torch.tensor([...]) turns the list into a (B,) tensor."))
    return failure


_COLLATE_OUTPUT_CHECKER = OutputChecker(
    outputs=("ids", "labels", "lengths"),
    reference=_collate_reference,
    make_cases=_collate_cases,
    mistakes=_COLLATE_MISTAKES,
    check_dtype=True,
)

register(
    Exercise(
        name="pad_collate",
        signature="pad_collate(batch: list of (ids (n_i,) long, label int), pad_id) -> "
                  "(ids (B, max n_i) long, labels (B,) long, lengths (B,) long)",
        checker=_collate_checker,
        hints=(
            "A batch stacks its sequences into one (B, max n_i) tensor; the shorter ones are filled up on the "
            "right with pad_id. Keep each sequence's real length: the model needs it to ignore the padding.",
            "Start from torch.full((B, max_len), pad_id, dtype=torch.long) and copy sequence b into row b, "
            "from position 0: padded[b, :len(ids)] = ids.",
            "labels and lengths are tensors too: torch.tensor([label for _, label in batch]) and "
            "torch.tensor([len(ids) for ids, _ in batch]). Return (ids, labels, lengths) in this order.",
        ),
        solution=_COLLATE_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# training_step (notebook 05): one step of the training loop
# ---------------------------------------------------------------------------

def _step_reference(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_no_zero_grad(model, inputs, targets, loss_fn, optimizer):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_before_backward(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    loss.backward()
    return loss.item()


def _step_before_backward_no_zero(model, inputs, targets, loss_fn, optimizer):
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    loss.backward()
    return loss.item()


def _step_no_step(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    return loss.item()


def _step_no_backward(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    return loss.item()


def _step_setups(g: torch.Generator):
    """Two (description, model, loss_fn, make_optimizer, batches) setups, built from the seeded generator."""
    def fill(model):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        return model

    linear = fill(nn.Linear(5, 3))
    ce_batches = [(torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(3)]
    mlp = fill(nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)))
    mse_batches = [(torch.randn(6, 4, generator=g), torch.randn(6, 2, generator=g)) for _ in range(3)]
    return [
        ("nn.Linear(5, 3), CrossEntropyLoss, SGD(lr=0.5)", linear, nn.CrossEntropyLoss(),
         lambda params: torch.optim.SGD(params, lr=0.5), ce_batches),
        ("a small MLP, MSELoss, SGD(lr=0.1, momentum=0.9)", mlp, nn.MSELoss(),
         lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9), mse_batches),
    ]


def _run_steps(step, setup, learner: bool):
    """Run ``step`` on a fresh copy of the setup's model, one call per batch.

    Returns a list of (returned value, parameters after the call) per call, and the error that stopped it (or None).
    """
    _, model, loss_fn, make_optimizer, batches = setup
    model = copy.deepcopy(model)
    optimizer = make_optimizer(model.parameters())
    trace = []
    for inputs, targets in batches:
        args = (model, inputs.clone(), targets.clone(), loss_fn, optimizer)
        if learner:
            value = call_learner(step, *args)
        else:
            try:
                value = step(*args)
            except Exception:
                return trace, True
        trace.append((value, [p.detach().clone() for p in model.parameters()]))
    return trace, None


def _params_close(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.allclose(x.double(), y.double(), atol=1e-5, rtol=1e-4)
                                    for x, y in zip(a, b))


def _loss_value(value):
    """The returned loss as a float, or None when it is not a number."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


_STEP_MISTAKES = [
    ("the gradients are never zeroed: loss.backward() ADDS to .grad, so from the second call on each step also "
     "uses the old gradients", "Call optimizer.zero_grad() first, before the forward pass.", _step_no_zero_grad),
    ("the parameters never change: optimizer.step() needs the gradients of loss.backward(), so it must come "
     "after it (is the step missing, or called before backward?)",
     "The order is zero_grad, forward, loss, backward, step.", _step_no_step, _step_before_backward,
     _step_no_backward),
    ("optimizer.step() comes before loss.backward(): each step uses the gradients left by the previous call, "
     "so the loss is right but the parameters are not",
     "The order is zero_grad, forward, loss, backward, step.", _step_before_backward_no_zero),
]


def _step_checker(fn: Callable) -> Failure | None:
    for setup in _step_setups(torch.Generator().manual_seed(SEED)):
        description = setup[0]
        want, _ = _run_steps(_step_reference, setup, learner=False)
        got, _ = _run_steps(fn, setup, learner=True)
        for call, ((value, params), (want_value, want_params)) in enumerate(zip(got, want), start=1):
            where = f"On {description}, call {call} of {len(want)} with the same optimizer"
            loss = _loss_value(value)
            loss_ok = loss is not None and abs(loss - want_value) <= 1e-5 + 1e-4 * abs(want_value)
            if _params_close(params, want_params) and loss_ok and isinstance(value, float):
                continue
            if not _params_close(params, want_params):
                for problem, fix, *variants in _STEP_MISTAKES:
                    for variant in variants:
                        trace, failed = _run_steps(variant, setup, learner=False)
                        if not failed and len(trace) == len(got) and \
                                all(_params_close(mine, theirs) for (_, mine), (_, theirs) in zip(got, trace)):
                            return Failure(problem, (f"{where}: the parameters differ from the expected ones.", fix))
                return Failure("the parameters after the step are not the expected ones",
                               (f"{where}.", "One step is: optimizer.zero_grad(), loss = loss_fn(model(inputs), "
                                             "targets), loss.backward(), optimizer.step()."))
            if value is None:
                return Failure("your function returned None — did you forget `return loss.item()`?",
                               (f"{where}.", "Return the loss as a Python float: loss.item()."))
            if isinstance(value, torch.Tensor) and loss_ok:
                return Failure("the loss is returned as a tensor: return it as a Python float",
                               (f"{where}: got {short_repr(value)}.",
                                "loss.item() gives the float (and lets the graph be freed)."))
            if not loss_ok:
                return Failure("the returned loss is not the loss of this batch before the step",
                               (f"{where}: expected {want_value:.6g}, got {short_repr(value)}.",
                                "Return loss.item() for the loss computed by the forward pass."))
            return Failure(f"the loss must be a Python float, got {type(value).__name__}",
                           (f"{where}.", "Return loss.item()."))
    return None


_STEP_SOLUTION = '''\
def training_step(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()                   # backward() ADDS to .grad: clear last step's gradients
    loss = loss_fn(model(inputs), targets)  # forward, then the loss
    loss.backward()                         # gradients of the loss for every parameter
    optimizer.step()                        # move the parameters
    return loss.item()                      # a Python float, not a tensor
'''

register(
    Exercise(
        name="training_step",
        signature="training_step(model, inputs, targets, loss_fn, optimizer) -> loss as a Python float",
        checker=_step_checker,
        hints=(
            "One step of the loop: clear the old gradients, run the model, compute the loss, compute the new "
            "gradients, update the parameters. Then return the loss.",
            "loss.backward() adds to each parameter's .grad, so optimizer.zero_grad() must come first; "
            "optimizer.step() must come after loss.backward(), or it uses stale gradients.",
            "optimizer.zero_grad(); loss = loss_fn(model(inputs), targets); loss.backward(); optimizer.step(); "
            "return loss.item() (a float, not a tensor).",
        ),
        solution=_STEP_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# hwc_to_chw (notebook 05): a picture as a (3, H, W) float tensor
# ---------------------------------------------------------------------------

def _chw_reference(image):
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _chw_wrong(image, *, mistake):
    x = torch.from_numpy(image)
    H, W, C = image.shape
    if mistake == "reshape":      # the right shape, but the numbers are read in HWC order
        return x.reshape(C, H, W).float() / 255
    if mistake == "view":
        return x.view(C, H, W).float() / 255
    if mistake == "no_divide":
        return x.permute(2, 0, 1).float()
    if mistake == "uint8":
        return x.permute(2, 0, 1)
    if mistake == "transposed":   # image.T or permute(2, 1, 0): (3, W, H)
        return x.permute(2, 1, 0).float() / 255
    if mistake == "hwc":
        return x.float() / 255
    raise ValueError(mistake)


def _chw_cases(g: torch.Generator) -> list[Case]:
    def case(H, W, note=""):
        image = torch.randint(0, 256, (H, W, 3), generator=g, dtype=torch.uint8).numpy()
        return Case(f"a ({H}, {W}, 3) uint8 picture", (image,), note)

    # never square, and never 3 pixels on a side, so that H, W and the channels cannot be mixed up unseen
    return [case(4, 6), case(5, 2), case(8, 11), case(1, 7, "a picture one pixel high")]


_CHW_MISTAKES = [
    Mistake("the shape is right but the pixels are scrambled: reshape / view keep the numbers in memory order "
            "(H, W, C) and only cut them differently; moving the channel axis to the front needs permute",
            "torch.from_numpy(image).permute(2, 0, 1): axis 2 (channels) first, then H, then W.",
            variants=(partial(_chw_wrong, mistake="reshape"), partial(_chw_wrong, mistake="view"))),
    Mistake("the values are still integers 0..255 (dtype uint8 or another integer type): convert to float and "
            "divide by 255",
            "... .float() / 255 gives float32 values in [0, 1].",
            variants=(partial(_chw_wrong, mistake="uint8"),)),
    Mistake("the values go up to 255: divide by 255 so that they lie in [0, 1]",
            "... .float() / 255",
            variants=(partial(_chw_wrong, mistake="no_divide"),)),
    Mistake("the result is (3, W, H): H and W are swapped (image.T or permute(2, 1, 0) reverses all axes)",
            "permute(2, 0, 1): the new axes are the old axis 2, then 0 (H), then 1 (W).",
            variants=(partial(_chw_wrong, mistake="transposed"),), by_shape=True),
    Mistake("the picture is still (H, W, 3), channels last: move the channels to the front",
            "torch.from_numpy(image).permute(2, 0, 1) turns (H, W, 3) into (3, H, W).",
            variants=(partial(_chw_wrong, mistake="hwc"),), by_shape=True),
]

_CHW_SOLUTION = '''\
import torch


def hwc_to_chw(image):
    x = torch.from_numpy(image)     # (H, W, 3) uint8, the same memory as the array
    x = x.permute(2, 0, 1)          # (3, H, W): channels first, as nn.Conv2d wants
    return x.float() / 255          # float32 in [0, 1]
'''

register(
    Exercise(
        name="hwc_to_chw",
        signature="hwc_to_chw(image: (H, W, 3) uint8 numpy array) -> (3, H, W) float32 tensor in [0, 1]",
        checker=OutputChecker(
            outputs=("chw",),
            reference=_chw_reference,
            make_cases=_chw_cases,
            mistakes=_CHW_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "PIL and NumPy store a picture channels last, (H, W, 3); PyTorch's nn.Conv2d wants channels first, "
            "(3, H, W), and float values, not the 8-bit integers 0..255.",
            "torch.from_numpy(image) gives a uint8 tensor of the same shape. Reorder its axes with permute "
            "(not reshape or view: they would keep the numbers in the old order).",
            "torch.from_numpy(image).permute(2, 0, 1) is (3, H, W); then .float() / 255 gives float32 in [0, 1].",
        ),
        solution=_CHW_SOLUTION,
    )
)
