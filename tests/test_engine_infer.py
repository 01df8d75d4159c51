"""`hubcls infer -m NAME` on files and folders: top-k against a direct model call, bad files reported."""
import json

import numpy as np
import pytest
from PIL import Image

from hubcls._paddle import import_paddle
from hubcls.cli import main
from hubcls.engine.infer import expand_inputs
from hubcls.errors import ConfigError

paddle = import_paddle()


def test_infer_model_name_folder_json_matches_direct_call(tmp_path, monkeypatch):
    import hubcls
    from hubcls.data import eval_transforms_for, read_image

    rng = np.random.default_rng(0)
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 50, 3), dtype=np.uint8)).save(imgs / "sub" / f"{i}.png")
    (imgs / "broken.jpg").write_bytes(b"not an image")
    (imgs / "notes.txt").write_text("ignored: not an image extension")
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))  # backend caches stay in the test dir
    paddle.seed(0)
    model = hubcls.create_model("MobileNetV3_small_x0_35")
    # a peaked classifier, so that the top-3 order is not decided by float rounding
    model.fc.weight.set_value(model.fc.weight * 200.0)
    weights = tmp_path / "w.pdparams"
    paddle.save(model.state_dict(), str(weights))

    out = tmp_path / "r.json"
    rc = main(["infer", "-m", "MobileNetV3_small_x0_35", "--weights", str(weights), str(imgs), "--top-k", "3",
               "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert [r["file"].split("/")[-1] for r in res] == ["broken.jpg", "0.png", "1.png", "2.png"]
    assert "error" in res[0]
    model.eval()
    pipe = eval_transforms_for(model.pretrained_cfg)
    for r in res[1:]:
        x = np.asarray(pipe(read_image(r["file"])), np.float32)[None]
        prob = paddle.nn.functional.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()[0]
        top = np.argsort(-prob)[:3]
        assert r["class_ids"] == top.tolist()
        np.testing.assert_allclose(r["scores"], prob[top], rtol=2e-3, atol=1e-5)
        assert len(r["label_names"]) == 3 and r["label_names"][0] != str(r["class_ids"][0])  # ImageNet names


def test_infer_input_errors(tmp_path):
    with pytest.raises(ConfigError, match="neither an image file nor a folder"):
        expand_inputs([str(tmp_path / "missing.jpg")])
    with pytest.raises(ConfigError, match="no images found"):
        expand_inputs([str(tmp_path)])
    assert main(["infer", str(tmp_path)]) == 2  # neither -c nor -m: a clear error, exit code 2
