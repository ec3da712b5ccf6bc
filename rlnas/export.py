"""Export a found architecture: as a JSON description, and as an ONNX network.

ONNX export uses torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``),
which works offline and needs the ``onnx`` package (``pip install 'rlnas[onnx]'``); ``dynamo=True``
selects the ``torch.export``-based exporter, which needs the ``onnxscript`` package as well.
"""
from __future__ import annotations

import io
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlnas.costs.measure import eval_mode
from rlnas.errors import ConfigError, InvalidCandidate, RlnasError, first_line
from rlnas.files import is_text, replacing
from rlnas.spaces.base import Candidate, Choice, Space


def check_onnx_installed() -> None:
    """Raise a one-line :class:`ConfigError` where torch's ONNX exporter cannot run (no ``onnx`` package)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'rlnas[onnx]'") from None


ONNX_MAX_BYTES = 2**31 - 2**26
"""Most bytes of weights an exported ONNX file holds (2 GiB, protobuf's limit, less room for the graph)."""


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int], *, opset: int = 17,
                dynamic_batch: bool = True, dynamo: bool = False) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as ONNX and return the path.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)``; the graph's input is called ``input``
    and its output ``logits``. With ``dynamic_batch`` the batch dimension is left free.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"export_onnx needs a torch.nn.Module, got {type(model).__name__} {model!r}")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in input_shape):
        raise ConfigError(f"export_onnx needs input_shape (C, H, W) or (N, C, H, W) of positive integers, got "
                          f"{input_shape!r}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ConfigError(f"export_onnx needs input_shape (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if size > ONNX_MAX_BYTES:  # torch would scatter the weights over loose files next to the model's
        raise ConfigError(f"the network's weights take {size / 2**30:.1f} GiB: an ONNX file holds at most 2 GiB "
                          "(protobuf's limit), and rlnas writes one self-contained file; export a smaller network")
    check_onnx_installed()
    path = Path(path)
    example = torch.zeros(shape)
    options: dict[str, Any] = {"input_names": ["input"], "output_names": ["logits"], "opset_version": opset}
    if dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise ConfigError("export_onnx(dynamo=True) needs the onnxscript package; use dynamo=False") from None
        if dynamic_batch:
            options["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    elif dynamic_batch:
        options["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter announces its own deprecation on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # harmless (strided Slice)
        with replacing(path) as temporary:  # a failed export leaves no half file and keeps an old one
            if is_text(str(temporary)):
                torch.onnx.export(model, (example,), str(temporary), dynamo=dynamo, **options)
            else:  # a folder named in bytes the locale cannot decode: torch's exporter takes text paths only
                buffer = io.BytesIO()
                torch.onnx.export(model, (example,), buffer, dynamo=dynamo, **options)
                temporary.write_bytes(buffer.getvalue())
    return path


def export_architecture_json(space: Space, candidate: Mapping[str, Choice]) -> dict[str, Any]:
    """A JSON-able description of ``candidate``: space name and fingerprint, key and choices."""
    candidate = space.candidate(candidate)
    from rlnas import __version__ as version

    return {
        "format": "rlnas-architecture/1",
        "space": space.name,
        "fingerprint": space.fingerprint,
        "key": space.key(candidate),
        "choices": candidate.to_dict(),
        "rlnas_version": version,
    }


def load_architecture_json(data: Mapping[str, Any], space: Space | None = None) -> Candidate:
    """The candidate described by :func:`export_architecture_json` output, checked against the space.

    ``space`` defaults to ``create_space(data["space"])``; a space with another fingerprint is refused.
    """
    if not isinstance(data, Mapping) or "choices" not in data:
        raise ConfigError(f"an architecture is the dict export_architecture_json writes (space, fingerprint, key, "
                          f"choices), got {data if len(repr(data)) < 80 else type(data).__name__!r}")
    if space is None:
        from rlnas.spaces import create_space

        space = create_space(str(data.get("space")))
    if data.get("space") != space.name or data.get("fingerprint") != space.fingerprint:
        raise InvalidCandidate(f"architecture of space {data.get('space')!r} (fingerprint {data.get('fingerprint')}) "
                               f"does not belong to space {space.name!r} (fingerprint {space.fingerprint})")
    candidate = space.candidate(data["choices"])
    if "key" in data and space.key(candidate) != data["key"]:
        raise InvalidCandidate(f"architecture key {data['key']!r} does not match its choices")
    return candidate


def model_input_shape(space: Space, model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` a network of ``space`` expects: the candidate's resolution for mobile
    networks, CIFAR's 3×32×32 for the cell networks (or the model's own ``input_shape``)."""
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    channels = int(getattr(model, "in_channels", 3))
    resolution = getattr(model, "resolution", None)
    if resolution is not None:
        return channels, int(resolution), int(resolution)
    return channels, 32, 32


def untrained_network(space: Space, candidate: Mapping[str, Choice], evaluator_spec: Mapping[str, Any] | None,
                      options: Mapping[str, Any]) -> tuple[nn.Module, tuple[int, int, int]]:
    """The network of ``candidate`` with seed-0 (untrained) weights and its input shape.

    With ``evaluator_spec`` of a ``train`` study, the network is built as that evaluator built it
    (its widths, classes and input shape); otherwise as the paper's network. ``options`` override.
    """
    from rlnas.models import create_model

    kwargs, input_shape = {}, None
    if evaluator_spec is not None:
        from rlnas.evaluators import build_evaluator
        from rlnas.study.spec import evaluator_identity

        spec = evaluator_identity(evaluator_spec)
        if spec.get("name") != "train":
            raise ConfigError(f"--as-searched needs a study of the train evaluator, not {spec.get('name')!r}: "
                              "its networks are the papers' (the default)")
        evaluator = build_evaluator(spec)
        kwargs, input_shape = evaluator.resolved_model_kwargs(), tuple(evaluator.data.input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same network on every export
        model = create_model(space, candidate, **(kwargs | dict(options)))
    return model, input_shape or model_input_shape(space, model)  # type: ignore[return-value]


# ------------------------------------------------------------------ trained networks
NB201_CLASSES = {"cifar10": (10, (3, 32, 32)), "cifar100": (100, (3, 32, 32)), "imagenet16-120": (120, (3, 16, 16))}
"""Classes and input shape of the data sets behind the NAS-Bench-201 table."""


IMAGE_EVALUATORS = ("train", "supernet", "shared")
"""Evaluators that train networks on an image data set named in their spec."""


def study_model_options(evaluator_spec: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[int, int, int] | None]:
    """Network options and input shape that follow a study's data set (``{}, None`` when unknown).

    An ``nb201`` study on CIFAR-100 exports a 100-class network, on ImageNet16-120 a 120-class
    network for 16×16 inputs; the network of a study that trained on images (the ``train``,
    ``supernet`` and ``shared`` evaluators) is built for its data set's classes, channels and image size.
    """
    if evaluator_spec.get("name") == "nb201":
        classes, shape = NB201_CLASSES[str(evaluator_spec.get("dataset", "cifar10"))]
        return {"num_classes": classes}, shape
    if evaluator_spec.get("name") in IMAGE_EVALUATORS:
        from rlnas.evaluators import build_evaluator
        from rlnas.study.spec import evaluator_identity

        try:
            data = build_evaluator(evaluator_identity(evaluator_spec)).data
        except RlnasError as exc:  # the data moved since: the paper's network, said
            warnings.warn(f"the network is the paper's default, not sized for the study's data set, which cannot be "
                          f"read: {first_line(exc)}", stacklevel=2)
            return {}, None
        shape = tuple(int(s) for s in data.input_shape)
        return {"num_classes": int(data.num_classes), "in_channels": shape[0]}, shape  # type: ignore[return-value]
    return {}, None


def _candidate_of_key(space: Space, key: str) -> Candidate | None:
    """The candidate of ``key`` in ``space``, or ``None`` when it is not one of its keys."""
    try:
        return space.from_key(key)
    except InvalidCandidate:
        return None


def trained_network(record: Any, trial: Any) -> tuple[nn.Module, tuple[int, int, int]]:
    """The network of a COMPLETE ``trial`` with the weights the train evaluator kept, in eval mode, and its input shape.

    Raises :class:`~rlnas.evaluators.weights.NoTrainedWeights` with the plain reason when there are none.
    """
    from rlnas.evaluators.weights import NoTrainedWeights, load_weights
    from rlnas.models import create_model
    from rlnas.study import space_of

    who = f"trial {trial.number} of study {record.name!r}"
    spec = dict(record.evaluator)
    if spec.get("name") == "train" and not spec.get("weights_dir"):
        raise NoTrainedWeights(f"{who} has no trained weights: the study ran without keeping them (--keep-weights "
                               f"none, or no weights_dir); rlnas retrain {record.name} trains the answer again")
    if spec.get("name") != "train":
        evaluator = f"the {spec['name']!r} evaluator of this study" if spec.get("name") else "this study's evaluator"
        raise NoTrainedWeights(f"{who} has no trained weights: {evaluator} kept none (the train evaluator keeps "
                               f"them; rlnas retrain {record.name} trains the answer with it)")
    if "weights" not in trial.eval_info:
        raise NoTrainedWeights(f"{who} has no trained weights: it was evaluated without keeping them")
    payload = load_weights(spec["weights_dir"], trial.eval_info["weights"], trial=who)
    space = space_of(record)
    trained = _candidate_of_key(space, payload["key"]) if payload["key"] != trial.key else trial.candidate
    if trained is None or space.identity(trained) != space.identity(trial.candidate):
        raise NoTrainedWeights(f"{who}: the weights file {trial.eval_info['weights']} holds {payload['key']!r}, "
                               f"not this trial's architecture")
    # a repeat answered from the same network (reuse_repeats) carries the weights of the trial it repeats
    model = create_model(space, space.candidate(trained), **payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, tuple(int(s) for s in payload["input_shape"])  # type: ignore[return-value]
