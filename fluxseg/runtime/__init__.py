"""How fluxseg runs on a backend: process and compiler settings, shared by every entry point.

    cpu_process    glibc malloc settings for XLA's CPU runtime (entry points re-execute under them)
    compile_cache  compiled functions kept on disk between runs
    backend        the CPU op forms switch, compiler options, donation, fluxseg's `jit`
    distributed    jax.distributed start-up on several hosts
"""
