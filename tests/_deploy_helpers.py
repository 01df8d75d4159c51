"""Shared helpers of the deployment / backend tests (not a test module)."""
from __future__ import annotations

import numpy as np


def photos():
    """Real photos (uint8 RGB HWC) of different sizes: scikit-image and scikit-learn samples."""
    import skimage.data as sd
    from sklearn.datasets import load_sample_images

    imgs = [sd.chelsea(), sd.astronaut(), sd.coffee(), sd.rocket()]
    imgs += list(load_sample_images().images)
    return [np.ascontiguousarray(i[:, :, :3]) for i in imgs]


def informative_init(model, seed: int = 0, probe=None):
    """Re-initialise a random model so its logits spread over a few units (default inits of some
    families give ~1e-5 logits, which would make a 1e-4 parity check vacuous): He-normal conv /
    linear weights, BN with unit statistics, small random biases; the classifier output is rescaled
    so logits have a standard deviation of about 1 on ``probe`` (a float32 NCHW batch)."""
    import paddle

    rng = np.random.default_rng(seed)
    state = model.state_dict()
    new = {}
    for key, value in state.items():
        shape = value.shape
        arr = value.numpy()
        if key.endswith("_mean"):
            new[key] = np.zeros(shape, arr.dtype)
        elif key.endswith("_variance"):
            new[key] = np.ones(shape, arr.dtype)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else int(shape[0])
            new[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(arr.dtype)
        elif key.endswith("weight") or key.endswith("scale"):
            new[key] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(arr.dtype)
        else:
            new[key] = (0.05 * rng.standard_normal(shape)).astype(arr.dtype)
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in new.items()})
    model.eval()
    # rescale the last linear/conv layer that produces the logits
    x = paddle.to_tensor(probe if probe is not None else rng.standard_normal((2, 3, 64, 64)).astype("float32"))
    with paddle.no_grad():
        try:
            std = float(model(x).numpy().std())
        except Exception:  # noqa: BLE001 - input too small for this family: use its own size
            std = 0.0
    if std > 0 and np.isfinite(std):
        last = [k for k in new if len(new[k].shape) >= 2][-1]
        params = dict(model.named_parameters())
        if last in params:
            params[last].set_value(paddle.to_tensor(new[last] * (1.0 / std)))
            bias = last[: -len("weight")] + "bias"
            if bias in params:
                params[bias].set_value(paddle.to_tensor(new[bias] * (1.0 / std)))
    return model


def dygraph_logits(model, transform, imgs):
    import paddle

    batch = np.stack([np.asarray(transform(i), np.float32) for i in imgs])
    with paddle.no_grad():
        return model(paddle.to_tensor(batch)).numpy(), batch


def softmax(x):
    z = x - x.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)
