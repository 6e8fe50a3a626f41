"""Run by test_checkpoint.py with 8 fake CPU devices: train with pmap, save,
restore here, predict one odd-sized image; write what the 1-device test needs.

usage: _restore_check.py DATA_DIR WORKDIR OUT.npz
"""
import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: _helpers
from _helpers import tiny_config  # noqa: E402
from fluxseg import infer  # noqa: E402
from fluxseg.train import checkpoint, loop  # noqa: E402

data_dir, workdir, out = sys.argv[1:4]
assert jax.device_count() == 8
cfg = tiny_config(data_dir, parallel="pmap", num_train_steps=4, checkpoint_every_steps=4)
result = loop.train_and_evaluate(cfg, workdir)
restored = checkpoint.restore(workdir)
image = np.random.RandomState(0).randint(0, 256, (45, 50, 3)).astype(np.uint8)
flat = {"/".join(str(k.key) for k in path): np.asarray(v) for path, v in
        jax.tree_util.tree_flatten_with_path(restored.variables)[0]}
np.savez(out, pred=infer.predict(restored, image), logits=infer.predict_logits(restored, image),
         image=image, **{"var:" + k: v for k, v in flat.items()})
print(json.dumps({"step": restored.step, "mIoU": result["mIoU"]}))
