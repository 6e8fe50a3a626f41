"""Paths the sweep tests share (a module of its own: test modules cannot import
`conftest` by name once several test directories are collected together)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TINY = os.path.join(HERE, "tiny_experiment.py")  # the tiny U-Net experiment the sweeps run
