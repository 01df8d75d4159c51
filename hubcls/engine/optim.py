"""Optimizers and learning-rate schedules, looked up by name from registries.

Schedules are step-based: the scheduler is stepped once per optimizer update, and every schedule
is a pure function of the update index, so resuming only needs ``last_epoch`` (Paddle's name for the
step counter). Per-stage ``lr_mult_list`` and "no weight decay on norm/bias" are expressed as Paddle
parameter groups (a group's ``learning_rate`` multiplies the global LR).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Dict, Optional

from ..errors import ConfigError
from ..registry import Registry

OPTIMIZERS = Registry("optimizer", group="hubcls.optimizers")
LR_SCHEDULES = Registry("LR schedule", group="hubcls.lr_schedules")


# ---------------------------------------------------------------------------------------------
# LR schedules: f(step) -> lr, with `total_steps` and `steps_per_epoch` known at build time

@LR_SCHEDULES.register(name="Constant")
def constant_lr(learning_rate: float, **_):
    return lambda step: learning_rate


@LR_SCHEDULES.register(name="Cosine")
def cosine_lr(learning_rate: float, total_steps: int, warmup_steps: int = 0, eta_min: float = 0.0, **_):
    span = max(1, total_steps - warmup_steps)

    def f(step):
        t = min(max(step - warmup_steps, 0), span)
        return eta_min + (learning_rate - eta_min) * 0.5 * (1 + math.cos(math.pi * t / span))

    return f


@LR_SCHEDULES.register(name="Piecewise")
def piecewise_lr(learning_rate: float = None, steps_per_epoch: int = 1, decay_epochs=(), values=None, **_):
    if values is None:
        if learning_rate is None:
            raise ConfigError("Optimizer.lr: Piecewise needs `values` or `learning_rate`")
        values = [learning_rate * (0.1 ** i) for i in range(len(decay_epochs) + 1)]
    if len(values) != len(decay_epochs) + 1:
        raise ConfigError(
            f"Optimizer.lr.values must have len(decay_epochs)+1 = {len(decay_epochs) + 1} entries, got {len(values)}"
        )
    bounds = [int(e * steps_per_epoch) for e in decay_epochs]

    def f(step):
        for b, v in zip(bounds, values):
            if step < b:
                return v
        return values[-1]

    return f


@LR_SCHEDULES.register(name="Step")
def step_lr(learning_rate: float, step_size: int, gamma: float = 0.1, steps_per_epoch: int = 1, **_):
    size = max(1, int(step_size * steps_per_epoch))  # step_size in epochs, like PaddleClas
    return lambda step: learning_rate * gamma ** (step // size)


@LR_SCHEDULES.register(name="Exponential")
def exponential_lr(learning_rate: float, decay_epochs: float = 2.4, decay_rate: float = 0.97, steps_per_epoch: int = 1,
                   warmup_steps: int = 0, **_):
    """Staircase decay by ``decay_rate`` every ``decay_epochs`` after the warm-up (release/2.0's
    ExponentialWarmup: the first decay applies on the step right after the warm-up ends)."""
    interval = max(1, int(decay_epochs * steps_per_epoch))

    def f(step):
        return learning_rate * decay_rate ** max(0, math.ceil((step - warmup_steps) / interval))

    return f


@LR_SCHEDULES.register(name="Linear")
def linear_lr(learning_rate: float, total_steps: int, end_lr: float = 0.0, warmup_steps: int = 0, **_):
    span = max(1, total_steps - warmup_steps)
    return lambda step: learning_rate + (end_lr - learning_rate) * min(max(step - warmup_steps, 0), span) / span


def with_warmup(fn: Callable[[int], float], warmup_steps: int, start_lr: float = 0.0):
    """Linear warm-up from ``start_lr`` to the schedule's value at the end of warm-up."""
    if warmup_steps <= 0:
        return fn
    target = fn(warmup_steps)

    def f(step):
        if step < warmup_steps:
            return start_lr + (target - start_lr) * step / warmup_steps
        return fn(step)

    return f


def _lr_scheduler_class():
    from .._paddle import import_paddle

    paddle = import_paddle()

    class StepLR(paddle.optimizer.lr.LRScheduler):
        """Paddle LRScheduler over a pure ``step -> lr`` function; step() once per update."""

        def __init__(self, fn, name):
            self._fn = fn
            self._name = name
            super().__init__(learning_rate=fn(0), last_epoch=-1, verbose=False)

        def get_lr(self):
            return float(self._fn(max(self.last_epoch, 0)))

        def __repr__(self):
            return f"StepLR({self._name}, step={self.last_epoch}, lr={self.last_lr:.6g})"

    return StepLR


def build_lr(lr_cfg: dict, epochs: int, steps_per_epoch: int):
    """lr section of the config -> Paddle LRScheduler stepped once per optimizer update."""
    lr_cfg = dict(lr_cfg or {"name": "Constant", "learning_rate": 0.1})
    name = lr_cfg.pop("name", "Constant")
    warmup_epoch = float(lr_cfg.pop("warmup_epoch", 0) or 0)
    warmup_start = float(lr_cfg.pop("warmup_start_lr", 0.0) or 0.0)
    for key in ("by_epoch", "step_each_epoch", "last_epoch", "verbose"):  # see config_schema.LR_IGNORED
        lr_cfg.pop(key, None)
    warmup_steps = int(round(warmup_epoch * steps_per_epoch))
    total = epochs * steps_per_epoch
    if "learning_rate" in lr_cfg:
        lr_cfg["learning_rate"] = float(lr_cfg["learning_rate"])
    builder = LR_SCHEDULES.get(name)
    try:
        fn = builder(total_steps=total, steps_per_epoch=steps_per_epoch, warmup_steps=warmup_steps, **lr_cfg)
    except TypeError as exc:
        raise ConfigError(f"Optimizer.lr ({name}): {exc}") from exc
    return _lr_scheduler_class()(with_warmup(fn, warmup_steps, warmup_start), name)


# ---------------------------------------------------------------------------------------------
# optimizers: builder(lr, param_groups_or_params, weight_decay, grad_clip, **kwargs)

def _paddle():
    from .._paddle import import_paddle

    return import_paddle()


@OPTIMIZERS.register(name="Momentum")
def _momentum(learning_rate, parameters, weight_decay=None, grad_clip=None, momentum=0.9, use_nesterov=False, **kw):
    p = _paddle()
    return p.optimizer.Momentum(learning_rate=learning_rate, momentum=momentum, parameters=parameters,
                                use_nesterov=use_nesterov, weight_decay=weight_decay, grad_clip=grad_clip, **kw)


@OPTIMIZERS.register(name="SGD")
def _sgd(learning_rate, parameters, weight_decay=None, grad_clip=None, **kw):
    return _paddle().optimizer.SGD(learning_rate=learning_rate, parameters=parameters,
                                   weight_decay=weight_decay, grad_clip=grad_clip, **kw)


@OPTIMIZERS.register(name="RMSProp")
def _rmsprop(learning_rate, parameters, weight_decay=None, grad_clip=None, momentum=0.0, rho=0.95, epsilon=1e-6, **kw):
    return _paddle().optimizer.RMSProp(learning_rate=learning_rate, parameters=parameters, momentum=momentum,
                                       rho=rho, epsilon=epsilon, weight_decay=weight_decay, grad_clip=grad_clip, **kw)


@OPTIMIZERS.register(name="Adam")
def _adam(learning_rate, parameters, weight_decay=None, grad_clip=None, beta1=0.9, beta2=0.999, epsilon=1e-8, **kw):
    return _paddle().optimizer.Adam(learning_rate=learning_rate, parameters=parameters, beta1=beta1, beta2=beta2,
                                    epsilon=epsilon, weight_decay=weight_decay, grad_clip=grad_clip, **kw)


@OPTIMIZERS.register(name="AdamW")
def _adamw(learning_rate, parameters, weight_decay=None, grad_clip=None, beta1=0.9, beta2=0.999, epsilon=1e-8, **kw):
    # AdamW's decay is decoupled: a float coefficient, not an L2 regularizer
    wd = weight_decay.coeff if hasattr(weight_decay, "coeff") else weight_decay
    return _paddle().optimizer.AdamW(learning_rate=learning_rate, parameters=parameters, beta1=beta1, beta2=beta2,
                                     epsilon=epsilon, weight_decay=0.01 if wd is None else float(wd),
                                     grad_clip=grad_clip, **kw)


# ---------------------------------------------------------------------------------------------
# parameter grouping

def stage_map(model) -> Dict[str, Optional[int]]:
    """Stage index of every parameter, for ``lr_mult_list`` / ``freeze_stages``: 0 = stem, k = the
    k-th stage of ``model.feature_info`` (the zoo's backbone contract), None = head (multiplier 1).

    A model may instead define ``stage_index(param_name) -> int | None``. Without either, a name-based
    fallback covers the common layouts (``conv1``/``stem`` = 0, ``res2``/``layer1``/``stages.0`` = 1).
    """
    import re

    names = [n for n, _ in model.named_parameters()]
    fn = getattr(model, "stage_index", None)
    if callable(fn):
        return {n: fn(n) for n in names}
    info = getattr(model, "feature_info", None) or []
    if info:
        # walk parameters in registration (= forward) order: the stem runs until the first stage's
        # container (``blocks.0``); stage k ends after the last parameter of info[k-1]["module"];
        # everything after the last stage is the head.
        ends = [str(d.get("module", "")) for d in info]
        first = ends[0].rpartition(".")[0] if ends[0].rpartition(".")[2].isdigit() else ends[0]
        if first and ends[0].rpartition(".")[2].isdigit():
            first = first + ".0"
        out, state, inside = {}, 0, False
        for n in names:
            if state == 0 and (n.startswith(first + ".") or n.startswith(ends[0] + ".")):
                state = 1
            while 0 < state <= len(ends):
                under = n.startswith(ends[state - 1] + ".")
                if under:
                    inside = True
                    break
                if inside:  # left the end module of this stage: next stage
                    state, inside = state + 1, False
                    continue
                break
            out[n] = state if state <= len(ends) else None
        return out
    out = {}
    for n in names:
        name = n
        for prefix in ("_layers.", "backbone.", "student.", "model."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        stage = None
        if re.match(r"(conv1|stem|conv_stem)(\b|_|\.)", name):
            stage = 0
        else:
            m = re.match(r"(res|layer)(\d+)", name)
            if m:  # res2..res5 (PaddleClas 2.0 ResNet) -> 1..4; layer1..4 -> 1..4
                stage = int(m.group(2)) - (1 if m.group(1) == "res" else 0)
            else:
                m = re.match(r"(?:stages|layers)\.(\d+)", name)
                if m:
                    stage = int(m.group(1)) + 1
        out[n] = stage
    return out


def optimizer_params(name: str) -> Optional[set]:
    """Config keys an optimizer takes besides the common ones: its builder's keyword parameters and
    those of the Paddle optimizer class of the same name it forwards ``**kw`` to (None: any)."""
    import inspect

    builder = OPTIMIZERS.get(name)
    out = set()
    for target in (builder, getattr(_paddle().optimizer, OPTIMIZERS.display_name(name), None)):
        if target is None:
            continue
        try:
            sig = inspect.signature(target.__init__ if inspect.isclass(target) else target)
        except (TypeError, ValueError):
            return None
        out |= {p.name for p in sig.parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return out - {"self", "learning_rate", "parameters", "weight_decay", "grad_clip", "name"}


def param_groups(model, lr_mult_list=None, no_wd_norm_bias=False, weight_decay=None, freeze_stages: int = 0,
                 no_wd_one_dim=False, no_wd_names=()):
    """Split the trainable parameters into Paddle param groups by (lr multiplier, decay?).

    No decay for: norm layers and biases (``no_wd_norm_bias``), every 1-D parameter
    (PaddleClas's ``one_dim_param_no_weight_decay``), names containing one of ``no_wd_names``
    (PaddleClas's ``no_weight_decay_name``, space-separated in its configs).

    A parameter's own multiplier (``ParamAttr(learning_rate=...)``, which zoo models set when built
    with ``lr_mult_list``) is kept: Paddle overwrites it with the group's value, so the group carries
    it. ``lr_mult_list`` here is only for models that did not take it themselves.
    """
    groups: Dict[tuple, dict] = {}
    norm_param_ids = set()
    paddle = _paddle()
    norm_types = (paddle.nn.BatchNorm, paddle.nn.BatchNorm1D, paddle.nn.BatchNorm2D, paddle.nn.LayerNorm,
                  paddle.nn.GroupNorm, paddle.nn.SyncBatchNorm, paddle.nn.InstanceNorm2D)
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, norm_types):
            for p in layer.parameters(include_sublayers=False):
                norm_param_ids.add(id(p))
    n_stages = len(lr_mult_list) if lr_mult_list else 0
    frozen = 0
    stages = stage_map(model) if (lr_mult_list or freeze_stages) else {}
    for name, p in model.named_parameters():
        stage = stages.get(name)
        if freeze_stages and stage is not None and stage < freeze_stages:
            p.stop_gradient = True
            frozen += 1
            continue
        if p.stop_gradient:
            continue
        attr = getattr(p, "optimize_attr", None) or {}
        mult = float(attr.get("learning_rate", 1.0)) if not hasattr(attr.get("learning_rate", 1.0), "shape") else 1.0
        if lr_mult_list and stage is not None:
            mult *= float(lr_mult_list[min(stage, n_stages - 1)])
        decay = not ((no_wd_norm_bias and (id(p) in norm_param_ids or len(p.shape) <= 1))
                     or (no_wd_one_dim and len(p.shape) <= 1)
                     or any(s in name for s in no_wd_names))
        key = (mult, decay)
        if key not in groups:
            g = {"params": [], "learning_rate": mult}
            if not decay:
                g["weight_decay"] = 0.0
            groups[key] = g
        groups[key]["params"].append(p)
    if freeze_stages and frozen == 0:
        warnings.warn(f"Arch.freeze_stages={freeze_stages} froze no parameter: the model's stage names were not recognised",
                      stacklevel=2)
    return list(groups.values())


def build_optimizer(opt_cfg: dict, model, epochs: int, steps_per_epoch: int, *, lr_mult_list=None,
                    no_wd_norm_bias=False, freeze_stages=0):
    """Optimizer section -> (optimizer, lr_scheduler)."""
    paddle = _paddle()
    opt_cfg = dict(opt_cfg or {"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.1}})
    name = opt_cfg.pop("name")
    lr = build_lr(opt_cfg.pop("lr", None), epochs, steps_per_epoch)
    reg = opt_cfg.pop("regularizer", None)
    weight_decay = opt_cfg.pop("weight_decay", None)
    if reg:
        coeff = float(reg.get("coeff", 0.0))
        rname = str(reg.get("name", "L2")).upper()
        weight_decay = paddle.regularizer.L2Decay(coeff) if rname == "L2" else paddle.regularizer.L1Decay(coeff)
    clip = opt_cfg.pop("clip_norm", None)
    grad_clip = paddle.nn.ClipGradByGlobalNorm(float(clip)) if clip else None
    no_wd_one_dim = bool(opt_cfg.pop("one_dim_param_no_weight_decay", False))
    no_wd_names = opt_cfg.pop("no_weight_decay_name", None) or ()
    if isinstance(no_wd_names, str):
        no_wd_names = no_wd_names.split()
    opt_cfg.pop("multi_precision", None)  # Paddle's AMP O2 decoration keeps fp32 master weights itself
    groups = param_groups(model, lr_mult_list, no_wd_norm_bias, weight_decay, freeze_stages,
                          no_wd_one_dim=no_wd_one_dim, no_wd_names=tuple(no_wd_names))
    if not groups:
        raise ConfigError("no trainable parameters (Arch.freeze_stages froze everything?)")
    builder = OPTIMIZERS.get(name)
    try:
        opt = builder(lr, groups, weight_decay=weight_decay, grad_clip=grad_clip, **opt_cfg)
    except TypeError as exc:
        raise ConfigError(f"Optimizer ({name}): {exc}") from exc
    return opt, lr
