"""Test-wide settings: JAX on the CPU, quiet TensorFlow, no GPU for TF, fluxseg's malloc settings."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# What `launch.py` and the `fluxseg` command run under (fluxseg/runtime/cpu_process.py):
# the xdist workers start with it, and so do the processes the tests launch.
from fluxseg.runtime import compile_cache, cpu_process  # noqa: E402

os.environ.update(cpu_process.environ())

# No test writes to the user's compilation cache (fluxseg/runtime/compile_cache.py);
# the tests of the cache give it a folder of their own.
os.environ.setdefault(compile_cache.ENV, "off")
