"""A pretend GPU for a machine without one: tensors marked as on "cuda" whose numbers stay on the CPU.

:class:`FakeGPU`, a ``torch.overrides.TorchFunctionMode``, marks the tensors that "are on the GPU"
(a model's parameters after ``.to("cuda")``, every tensor moved with ``.to`` / ``.cuda``, made with
``device="cuda"`` or computed from a marked tensor) while their numbers stay on the CPU. It raises
as CUDA does when an operation mixes a marked tensor with an unmarked CPU tensor (CPU scalars
excepted, as on CUDA), when a marked tensor goes to NumPy (``.numpy()``, ``np.asarray``, so also
matplotlib), and when a CPU generator samples from marked probabilities. Since the arithmetic
really runs on the CPU, every result equals the plain CPU run bit for bit.

    with fake_gpu(model):                  # the model's parameters and buffers are "on the GPU"
        model(ids)                         # raises DeviceMix: the inputs were left on the CPU

Used by tests/test_devices.py. A whole notebook can run on it too: enter ``FakeGPU()`` for the
kernel's session (``FakeGPU().__enter__()``) and make ``torch.cuda.is_available`` /
``torch.cuda.device_count`` answer as a machine with one GPU, so that ``get_device()`` says cuda.
"""

from __future__ import annotations

import contextlib

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["GPU", "DeviceMix", "FakeGPU", "fake_gpu", "is_gpu_device", "on_gpu"]

GPU = torch.device("cuda")
_MARK = "_on_fake_gpu"


class DeviceMix(RuntimeError):
    """What CUDA raises when a GPU tensor meets a CPU tensor; raised here by FakeGPU."""


def on_gpu(t) -> bool:
    """Whether ``t`` is a tensor on the pretend GPU (marked)."""
    return isinstance(t, torch.Tensor) and getattr(t, _MARK, False)


def _tensors(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


def _mark(x):
    for t in _tensors(x):
        setattr(t, _MARK, True)
    return x


def _is_device(d) -> bool:
    if isinstance(d, torch.device):
        return True
    if isinstance(d, str):
        try:
            torch.device(d)
        except RuntimeError:
            return False
        return True
    return False


def is_gpu_device(d) -> bool:
    """Whether ``d`` (a str or a torch.device) names a CUDA device: "cuda", "cuda:0", ..."""
    return _is_device(d) and torch.device(d).type == "cuda"


# Packed sequences (the GRU translator): CUDA keeps their batch sizes and lengths on the CPU, so these
# take CPU tensors beside GPU ones, and the two packing functions return them on the CPU (second output).
_CPU_ARGUMENTS = {"_pack_padded_sequence", "_pad_packed_sequence", "gru", "lstm", "rnn_tanh", "rnn_relu"}
_CPU_SECOND_OUTPUT = {"_pack_padded_sequence", "_pad_packed_sequence"}


class FakeGPU(TorchFunctionMode):
    """Inside ``with FakeGPU():`` marked tensors count as being on "cuda" (see the module's docstring)."""

    def __enter__(self):
        # copy.deepcopy(model) copies each Parameter through a Python method the mode does not see
        # (Parameter.__deepcopy__ makes a new Parameter from a clone): keep the copy where the original is.
        self._parameter_deepcopy = real = torch.nn.Parameter.__deepcopy__

        def deepcopy(param, memo):
            out = real(param, memo)
            if on_gpu(param):
                setattr(out, _MARK, True)
            return out

        torch.nn.Parameter.__deepcopy__ = deepcopy
        return super().__enter__()

    def __exit__(self, *exc):
        torch.nn.Parameter.__deepcopy__ = self._parameter_deepcopy
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", str(func))
        if func == torch.Tensor.device.__get__:
            return GPU if on_gpu(args[0]) else func(*args, **kwargs)
        if func in (torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu):
            return self._move(func, args, kwargs)
        made_on_gpu = is_gpu_device(kwargs.get("device"))   # torch.arange(T, device="cuda"), torch.tensor(..., device=...)
        if made_on_gpu:
            kwargs["device"] = "cpu"
        tensors = list(_tensors((args, kwargs)))
        if name == "__deepcopy__":   # copy.deepcopy(model): the copy stays where the tensor is (its memo holds copies)
            tensors = [args[0]]
        elif func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            # CUDA takes CPU index tensors for a GPU tensor, not GPU indices for a CPU tensor
            if not on_gpu(args[0]) and any(on_gpu(t) for t in _tensors(args[1])):
                raise DeviceMix(f"{name}: indices on the GPU for a tensor on the CPU")
            tensors = [args[0]]
        elif func == torch.Tensor.copy_ or name in _CPU_ARGUMENTS:
            tensors = [t for t in tensors if on_gpu(t)]   # copies across devices are allowed
        gpu = any(on_gpu(t) for t in tensors)
        cpu = [tuple(t.shape) for t in tensors if not on_gpu(t) and t.dim() > 0]  # CPU scalars may meet GPU ones
        if gpu and cpu:
            raise DeviceMix(f"{name}: Expected all tensors to be on the same device, but found tensors on cuda "
                            f"(the fake GPU) and on cpu (shapes {cpu})")
        if gpu and func in (torch.Tensor.numpy, torch.Tensor.__array__):   # np.asarray(t), plt.plot(t) too
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy it first")
        generator = kwargs.get("generator")
        if gpu and isinstance(generator, torch.Generator) and generator.device.type != "cuda":
            raise DeviceMix(f"{name}: Expected a 'cuda' device type for generator but found 'cpu'")
        out = func(*args, **kwargs)
        if gpu and name in _CPU_SECOND_OUTPUT:
            return (_mark(out[0]), *out[1:])
        return _mark(out) if gpu or made_on_gpu else out

    def _move(self, func, args, kwargs):
        """x.to(...), x.cuda(), x.cpu(): the numbers stay on the CPU, the mark says where the tensor is."""
        t, rest = args[0], list(args[1:])
        if func == torch.Tensor.cuda:
            target, call, rest = GPU, torch.Tensor.to, []
            kwargs = {k: v for k, v in kwargs.items() if k == "non_blocking"}
        elif func == torch.Tensor.cpu:
            target, call = torch.device("cpu"), torch.Tensor.to
        else:
            target, call = None, func
            if _is_device(kwargs.get("device")):
                target, kwargs["device"] = kwargs["device"], "cpu"
            for i, a in enumerate(rest):
                if isinstance(a, torch.Tensor):   # x.to(other): other's device and dtype
                    target, rest[i] = (GPU if on_gpu(a) else a.device), a.dtype
                elif _is_device(a):
                    target, rest[i] = a, torch.device("cpu")
        out = call(t, *rest, **kwargs)
        if target is None:   # a dtype only: the device stays
            return _mark(out) if on_gpu(t) else out
        gpu = torch.device(target).type == "cuda"
        if gpu == on_gpu(t):
            return out
        if isinstance(t, torch.nn.Parameter) and out is t:   # Module.to(): the parameter itself moves
            if gpu:
                setattr(t, _MARK, True)
            else:
                delattr(t, _MARK)
            return t
        if out is t:
            out = t.view_as(t)   # a new tensor, as a copy to another device is
        return _mark(out) if gpu else out


@contextlib.contextmanager
def fake_gpu(*modules):
    """``modules`` on the pretend GPU (parameters and buffers marked) for the block, then back."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    for t in tensors:
        setattr(t, _MARK, True)
    try:
        with FakeGPU():
            yield
    finally:
        for t in tensors:
            if hasattr(t, _MARK):
                delattr(t, _MARK)
