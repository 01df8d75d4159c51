"""The model resolver: every form of a model a user can hand to hubcls -> one :class:`ModelSource`.

Forms (each entry point - ``create_model``, ``hub.Module``, ``Predictor``, ``hubcls infer/predict/
export/eval/serve`` - takes all of them, through :func:`resolve_model`):

* a zoo name, any spelling: ``ResNet50_vd_ssld``, ``resnet50_vd_ssld``, ``resnet50_vd_imagenet_ssld``;
* a model package directory (``model.json``; also older ``save_pretrained`` directories);
* a training run directory (``hubcls train``'s output: ``best/`` / ``last/`` packages, or the older
  layout ``config.yaml`` + ``best_model.pdparams``);
* an export directory (``hubcls export``: an inference program inside a package, or the older
  ``preprocess.json`` layout, which has no dygraph weights);
* a PaddleClas export folder (``tools/export_model.py``: ``inference.pdmodel``/``.json`` +
  ``.pdiparams``) with its ``inference_cls.yaml``-style config, or that config (_paddleclas_export.py);
* a PaddleHub module directory (``modules/<name>/module.py`` naming ``HUBCLS_MODEL``);
* a weights file (``.pdparams`` / ``.safetensors`` / static ``.tar``): inside a package or run
  directory it brings that directory's facts; on its own it needs a name (``weights=`` beside it).

``create_model`` is resolve + build. The class count always comes from the weights (see
``_builder.build_from_cfg``); class names from
the package/run, else ``label_list=``, else ``class_0..N-1`` with a warning (:func:`inference_labels`).
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from ..errors import ConfigError, RegistryError, WeightsError
from . import _package as P
from ._builder import build_from_cfg
from ._pretrained import PretrainedCfg

if TYPE_CHECKING:
    import paddle

log = logging.getLogger("hubcls.models")

ACCEPTED_FORMS = (
    "a zoo name (any spelling: ResNet50_vd_ssld, resnet50_vd_imagenet_ssld; see `hubcls models`), "
    "a model package directory (model.json, written by save_pretrained / hubcls train / hubcls export), "
    "a training run directory (config.yaml + best_model.pdparams, or best/ + last/ packages), "
    "an export directory (inference.json + preprocess.json or model.json), "
    "a PaddleClas export folder (inference.pdmodel or inference.json + inference.pdiparams, with its "
    "inference_cls.yaml-style config inside) or that config, "
    "a PaddleHub module directory (module.py with HUBCLS_MODEL), "
    "or a weights file (.pdparams / .safetensors / .tar) inside one of those directories or together with a name"
)
WEIGHT_SUFFIXES = (".pdparams", ".safetensors", ".tar", ".tar.gz", ".tgz", ".pdckpt")
RUN_CONFIG = "config.yaml"
RUN_WEIGHTS = ("best_model.pdparams", "last_model.pdparams")  # older run layout, best first
RUN_PACKAGES = ("best", "last")
OFFICIAL, RANDOM = "official", "random"


@dataclass
class ModelSource:
    """A resolved model: what it is, where its weights are, and the facts that travel with it."""

    kind: str                          # "zoo" | "package" | "run" | "export" | "hub_module" | "weights"
    given: str                         # what the user passed, for messages
    cfg: PretrainedCfg                 # architecture, class count, labels, eval ops (cfg.extra["preprocess"])
    weights: Union[None, bool, Path, str]  # True: official; False: random; a file; a URL; None: none (program only)
    arch_kwargs: dict = field(default_factory=dict)
    directory: Optional[Path] = None   # the package / run / export / module directory
    program: Optional[Path] = None     # an exported inference program (path prefix), if any
    provenance: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.cfg.name

    @property
    def weights_id(self) -> str:
        """"official", "random", or the weights file (what Module.weights_source reports)."""
        if self.weights is True:
            return OFFICIAL
        if self.weights is False:
            return RANDOM
        if self.weights is None:
            return str(self.program)
        return str(self.weights)

    @property
    def labels(self) -> Optional[List[str]]:
        """Class names the source carries (None: unknown; see :func:`inference_labels`)."""
        return P.labels_of(self.cfg)

    @property
    def preprocess(self) -> List[dict]:
        """The eval op list."""
        return P.preprocess_of(self.cfg)

    @property
    def input_size(self) -> Tuple[int, int, int]:
        """(3, H, W) the model takes."""
        return P.input_size_of(self.cfg)

    def create(self, *, num_classes: Optional[int] = None, features_only: bool = False,
               out_indices: Optional[Sequence[int]] = None, **kwargs: Any) -> "paddle.nn.Layer":
        """Build the eval-ready dygraph model (weights loaded; class count from the weights)."""
        if self.weights is None:
            raise ConfigError(f"{self.given} holds only an inference program, no weights to build a "
                              f"dygraph model from; use hubcls.deploy.Predictor (or backend='inference'/'onnxruntime')")
        return build_from_cfg(self.cfg, self.weights, num_classes=num_classes, features_only=features_only,
                              out_indices=out_indices, kwargs={**self.arch_kwargs, **kwargs})


# --------------------------------------------------------------------------- entry points
def create_model(
    name: Union[str, os.PathLike],
    pretrained: Union[bool, str, os.PathLike] = False,
    num_classes: Optional[int] = None,
    features_only: bool = False,
    out_indices: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> "paddle.nn.Layer":
    """Build a registered model.

    name: PaddleClas spelling (``ResNet50_vd_ssld``), snake case, or a PaddleHub module name
        (``resnet50_vd_imagenet_ssld``); weight variants resolve to their architecture + weights.
        Also any other form the model resolver accepts (a model package, a training run, an export
        directory with weights, a PaddleHub module directory; see _resolve.py): directories bring
        their own weights, class names and preprocessing.
    pretrained: False (random init); True (the official weights, downloaded into the cache);
        a local file (.pdparams in either PaddleClas key scheme, .safetensors, a static .tar or
        directory of per-parameter files); a model package / run directory; or a URL.
    num_classes: classifier size. Default: the weights' class count (a 6-class fine-tuned file
        gives a 6-class model), 1000 for ImageNet-1k. A size other than the file's keeps every
        pretrained weight except the classifier, which is freshly initialised (fine-tuning; one
        info line says so).
    features_only / out_indices: return a multi-scale feature extractor (see _features.py).
    kwargs: passed to the architecture builder.
    """
    is_path = isinstance(name, os.PathLike) or (isinstance(name, str) and _looks_like_path(name))
    if pretrained is False or pretrained is None:
        weights = None if is_path else False  # a directory brings its own weights
    elif isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
        weights = os.fspath(pretrained)
        if not weights.startswith(("http://", "https://", "file://")) and not Path(weights).expanduser().exists():
            raise WeightsError(f"pretrained={weights!r}: no such file or directory")
    elif pretrained is True:
        weights = True
    else:
        raise TypeError(f"pretrained must be bool, a path or a URL, got {type(pretrained).__name__}")
    source = resolve_model(name, weights=weights)
    return source.create(num_classes=num_classes, features_only=features_only, out_indices=out_indices, **kwargs)


def resolve_model(model: Union[str, os.PathLike, None], weights: Union[None, bool, str, os.PathLike] = None) -> ModelSource:
    """``model`` in any accepted form (see module docstring) -> ModelSource.

    ``weights``: None = the model's own (official weights for a zoo name, the directory's for a
    directory); ``True``/"official"; ``False``/"random" (untrained); a weights file; a package or
    run directory (its weights, labels and preprocessing; its architecture must be ``model``'s);
    or a URL."""
    if model is None:
        if weights is not None and _is_local(weights):
            return resolve_model(weights)
        raise ConfigError(f"no model given; a model is {ACCEPTED_FORMS}")
    given = os.fspath(model) if isinstance(model, os.PathLike) else str(model)
    if _looks_like_path(given) and not _zoo_name_beside_a_foreign_folder(given):
        src = _resolve_path(Path(given).expanduser(), given)
    else:
        try:
            src = _zoo(given)
        except RegistryError:
            if _is_local(weights) and _self_describing(Path(os.fspath(weights)).expanduser()):
                return resolve_model(weights)  # the directory says what it is; the name adds nothing
            raise
    return _apply_weights(src, weights)


def _zoo_name_beside_a_foreign_folder(given: str) -> bool:
    """A bare zoo name that is also the name of a folder in the working directory which holds no
    model (e.g. a PaddleHub module's source copy named like it): the user meant the zoo model."""
    if any(sep in given for sep in ("/", "\\")) or not Path(given).is_dir() or _resolve_dir(Path(given), given):
        return False
    try:
        _zoo(given)
    except RegistryError:
        return False
    warnings.warn(f"./{given} is a folder that holds no model; using the zoo model {given!r} "
                  f"(write ./{given} to mean the folder)", stacklevel=3)
    return True


def _self_describing(p: Path) -> bool:
    home = p if p.is_dir() else _home_of_weights(p)
    return home is not None and _resolve_dir(home, str(home)) is not None


def _is_local(w) -> bool:
    return isinstance(w, (str, os.PathLike)) and not isinstance(w, bool) and Path(os.fspath(w)).expanduser().exists()


def _looks_like_path(s: str) -> bool:
    if Path(s).expanduser().exists():
        return True
    return any(sep in s for sep in ("/", "\\")) or s.startswith((".", "~")) or s.lower().endswith(WEIGHT_SUFFIXES)


def _zoo(name: str, kind: str = "zoo") -> ModelSource:
    from ._registry import resolve

    try:
        cfg = resolve(name)
    except RegistryError as exc:
        raise RegistryError(f"{exc}. A model is {ACCEPTED_FORMS}") from None
    return ModelSource(kind, name, cfg, weights=True)


def _resolve_path(p: Path, given: str) -> ModelSource:
    if not p.exists():
        raise ConfigError(f"{given}: no such file or directory. A model is {ACCEPTED_FORMS}")
    if p.is_file() and p.suffix.lower() in (".yml", ".yaml"):
        from . import _paddleclas_export as PX

        if PX.is_inference_config(PX._read_yaml(p)):  # PaddleClas's inference_cls.yaml names its export folder
            return _from_paddleclas_export(PX.model_dir_of_config(p), given, config=p)
        raise ConfigError(f"{given} is a YAML file but not a PaddleClas inference config (PreProcess.transform_ops); "
                          f"a model is {ACCEPTED_FORMS}")
    if p.is_file():
        home = _home_of_weights(p)
        if home is None:
            raise ConfigError(f"{given} is a weights file; it needs the architecture's name beside it "
                              f"(create_model(NAME, pretrained=FILE), hub.Module(name=NAME, weights=FILE), "
                              f"--model NAME --weights FILE)")
        src = _resolve_dir(home, str(home))
        return _with_file(src, p)
    src = _resolve_dir(p, given)
    if src is None:
        raise ConfigError(f"{given} holds no model. A model is {ACCEPTED_FORMS}")
    return src


def _resolve_dir(d: Path, given: str) -> Optional[ModelSource]:
    for sub in RUN_PACKAGES:  # a run directory of hubcls train: best/ and last/ packages
        if (d / sub / P.MANIFEST).is_file() and not (d / P.MANIFEST).is_file():
            src = _from_package(P.read_package(d / sub), given)
            src.kind, src.directory = "run", d
            return src
    if P.is_package(d):
        return _from_package(P.read_package(d), given)
    if (d / RUN_CONFIG).is_file() and any((d / w).is_file() for w in RUN_WEIGHTS):
        return _from_run_config(d, given)
    if P.program_prefix(d) is not None:
        if (d / P.SAFETENSORS).is_file():  # a hubcls export whose manifest is gone
            raise ConfigError(f"{d} has an inference program and {P.SAFETENSORS} but no {P.MANIFEST}: a `hubcls export` "
                              f"directory that lost its manifest; export it again")
        return _from_paddleclas_export(d, given)  # a program without a hubcls manifest: PaddleClas's export_model.py
    hub_name = _module_dir_model_name(d)
    if hub_name is not None:
        src = _zoo(hub_name, kind="hub_module")
        src.given, src.directory = given, d
        return src
    return None


def _from_paddleclas_export(d: Path, given: str, config: Optional[Path] = None) -> ModelSource:
    """A PaddleClas ``tools/export_model.py`` folder: its program is the model (see _paddleclas_export.py)."""
    from . import _paddleclas_export as PX

    facts = PX.read_export(d, config)
    return ModelSource("export", given, PX.source_cfg(facts), weights=None, directory=d, program=facts["program"],
                       provenance=facts["provenance"])


def _from_package(pkg: P.ModelPackage, given: str) -> ModelSource:
    kind = "export" if pkg.program is not None else "package"
    weights = pkg.weights_file  # None: an older export directory (a program, no dygraph weights)
    return ModelSource(kind, given, pkg.cfg, weights=weights, arch_kwargs=dict(pkg.arch_kwargs),
                       directory=pkg.directory, program=pkg.program, provenance=dict(pkg.provenance))


def _home_of_weights(f: Path) -> Optional[Path]:
    d = f.parent
    if (d / P.MANIFEST).is_file() or (d / P.LEGACY_CONFIG).is_file() and P.is_package(d):
        return d
    if (d / RUN_CONFIG).is_file():
        return d
    return None


def _with_file(src: ModelSource, f: Path) -> ModelSource:
    src.weights = f
    src.given = str(f)
    return src


def _apply_weights(src: ModelSource, weights) -> ModelSource:
    if weights is None:
        return src
    if weights is True or (isinstance(weights, str) and weights.lower() == OFFICIAL):
        if src.kind not in ("zoo", "hub_module"):
            raise ConfigError(f"{src.given}: official weights belong to zoo names; a directory brings its own")
        src.weights = True
        return src
    if weights is False or (isinstance(weights, str) and weights.lower() == RANDOM):
        src.weights = False
        return src
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None, True/False, 'official', 'random', a path or a URL; "
                        f"got {type(weights).__name__}")
    w = os.fspath(weights)
    if w.startswith(("http://", "https://", "file://")):
        src.weights = w
        return src
    p = Path(w).expanduser()
    if not p.exists():
        raise WeightsError(f"weights {w}: no such file or directory")
    home = p if p.is_dir() else _home_of_weights(p)
    other = _resolve_dir(home, str(home)) if home is not None else None
    if other is not None:
        # a file inside (or the directory of) a package / run: its labels and preprocessing come along
        if p.is_file():
            other = _with_file(other, p)
        if src.kind in ("zoo", "hub_module") and _arch_key(other.cfg.arch) != _arch_key(src.cfg.arch):
            raise ConfigError(f"weights {w} belong to {other.cfg.arch}, not {src.cfg.arch} ({src.given})")
        return other
    src.weights = p  # a weights file, or a directory of Paddle 1.x per-parameter files
    return src


def _arch_key(name: str) -> str:
    from ._registry import canonical_name

    return canonical_name(name)


# --------------------------------------------------------------------------- PaddleHub module dirs
def _module_dir_model_name(directory: Path) -> Optional[str]:
    """A modules/<name>/ PaddleHub package names its model as ``HUBCLS_MODEL = "..."`` in module.py."""
    module_py = directory / "module.py"
    if not module_py.is_file():
        return None
    m = re.search(r"""^HUBCLS_MODEL\s*=\s*["']([^"']+)["']""", module_py.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- older run directories
def _from_run_config(d: Path, given: str) -> ModelSource:
    """``hubcls train`` output before packages: config.yaml + best_model.pdparams (+ last_model.pdparams)."""
    import yaml

    try:
        cfg_doc = yaml.safe_load((d / RUN_CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{d / RUN_CONFIG}: not a readable YAML config ({exc})") from None
    arch_sec = dict(cfg_doc.get("Arch") or {})
    name = arch_sec.pop("name", None)
    if not name:
        raise ConfigError(f"{d / RUN_CONFIG} has no Arch.name")
    n = arch_sec.pop("class_num", None) or (cfg_doc.get("Global") or {}).get("class_num")
    for training_only in ("pretrained", "freeze_stages", "lr_mult_list"):
        arch_sec.pop(training_only, None)
    src = _zoo(str(name))
    weights = next(d / w for w in RUN_WEIGHTS if (d / w).is_file())
    ops = run_eval_ops(cfg_doc)
    labels = run_labels(cfg_doc, d)
    if labels is not None and n is not None and len(labels) != int(n):
        log.warning("%s: the run's label list has %d names for %s classes; not using it", d, len(labels), n)
        labels = None
    cfg = src.cfg.with_(label_list="") if labels is None else src.cfg
    cfg = P.with_package_facts(cfg, num_classes=n, labels=labels, preprocess=ops)
    return ModelSource("run", given, cfg, weights=weights, arch_kwargs=arch_sec, directory=d,
                       provenance={"config": str(d / RUN_CONFIG)})


def run_eval_ops(cfg_doc: dict) -> Optional[List[dict]]:
    """A training config's inference preprocessing: Infer.transforms, else the Eval loader's ops
    (decoding is the pipeline's own first step, so DecodeImage is dropped)."""
    ops = (cfg_doc.get("Infer") or {}).get("transforms")
    if not ops:
        ops = (((cfg_doc.get("DataLoader") or {}).get("Eval") or {}).get("dataset") or {}).get("transform_ops")
    if not ops:
        return None
    return [op for op in ops if not (isinstance(op, dict) and "DecodeImage" in op)]


def run_labels(cfg_doc: dict, run_dir: Optional[Path] = None) -> Optional[List[str]]:
    """Class names a training config points to: Infer.PostProcess.class_id_map_file, the datasets'
    label_list, or label_list.txt under their image_root. Relative paths are tried from the working
    directory, then inside the run directory (a run moved elsewhere keeps its demo_data/...)."""
    from ..data.label_lists import read_labels

    cands = [((cfg_doc.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")]
    for mode in ("Eval", "Train"):
        ds = (((cfg_doc.get("DataLoader") or {}).get(mode) or {}).get("dataset") or {})
        cands.append(ds.get("label_list"))
        if ds.get("image_root"):
            cands.append(str(Path(ds["image_root"]) / "label_list.txt"))
    for cand in cands:
        if not cand:
            continue
        for path in _candidate_paths(Path(str(cand)).expanduser(), run_dir):
            if path.is_file():
                return read_labels(path)
    return None


def _candidate_paths(p: Path, run_dir: Optional[Path]):
    yield p
    if run_dir is not None and not p.is_absolute():
        parts = [x for x in p.parts if x not in (".", "")]
        for i in range(len(parts)):
            yield run_dir.joinpath(*parts[i:])


# --------------------------------------------------------------------------- labels for inference
def inference_labels(cfg: Any, num_classes: int, label_list: Union[None, str, os.PathLike, Sequence[str]] = None,
                     *, what: str = "the model") -> List[str]:
    """Names for a ``num_classes``-way head: ``label_list`` (list, file or shipped list name) when
    given, else the model's own (package/run/zoo), else ``class_0..N-1`` with a warning."""
    from ..data.label_lists import labels_from

    if label_list is not None:
        labels = labels_from(os.fspath(label_list) if isinstance(label_list, os.PathLike) else label_list)
        if labels is None:
            raise ConfigError(f"label_list {label_list!r}: no such file")
        if len(labels) != num_classes:
            raise ConfigError(f"label_list has {len(labels)} names but {what} has {num_classes} classes")
        return labels
    labels = P.labels_of(cfg, num_classes)
    if labels is None:
        warnings.warn(f"{what} has {num_classes} classes and no class names (no package labels, no label_list=); "
                      f"answering with class_0..class_{num_classes - 1}", stacklevel=3)
        labels = [f"class_{i}" for i in range(num_classes)]
    return labels
