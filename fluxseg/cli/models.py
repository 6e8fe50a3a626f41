"""`fluxseg models`: the registered models, their task, default input and description."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="fluxseg models", description=__doc__).parse_args(argv)
    from fluxseg import models

    for name in models.names():
        s = models.spec(name)
        print(f"{name:<24}{s.task:<16}{'x'.join(map(str, s.input_shape)):<14}{s.description}")
    return 0
