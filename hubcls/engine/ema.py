"""Exponential moving average of model weights (parameters averaged, buffers copied)."""
from __future__ import annotations

from .._paddle import import_paddle


class ModelEMA:
    def __init__(self, model, decay: float = 0.9999):
        paddle = import_paddle()
        self.decay = float(decay)
        self.updates = 0
        with paddle.no_grad():
            self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._param_names = {k for k, _ in model.named_parameters()}

    def update(self, model) -> None:
        paddle = import_paddle()
        self.updates += 1
        # warm-up of the decay (as timm/PaddleClas do) so early averages are not dominated by init
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with paddle.no_grad():
            for k, v in model.state_dict().items():
                s = self.shadow[k]
                if k in self._param_names and paddle.is_floating_point(v):
                    s.set_value(s * d + v.detach() * (1 - d))
                else:
                    s.set_value(v.detach())

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def set_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            if k in self.shadow:
                self.shadow[k].set_value(v)

    def copy_to(self, model) -> None:
        model.set_state_dict(self.shadow)
