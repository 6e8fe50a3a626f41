"""Training: one per-device step, two data-parallel wrappers, Orbax checkpoints.

    from fluxseg.train import loop
    loop.train_and_evaluate(config, workdir)   # train, evaluate, checkpoint
    loop.evaluate(config, workdir)             # metrics of a checkpoint
    from fluxseg.train.checkpoint import restore
    restored = restore(workdir)                # .model .variables .config .preprocess

Modules: config (every key and its default; check, resolve, migration of
saved configs), validate (the value checks behind config.check), step (the pure per-device
train/eval steps), parallel (pmap and jit+shard_map wrappers), optim,
checkpoint, loop, preemption (SIGTERM -> save and stop), writers (JSON lines,
TensorBoard, PNG), build (config -> model/optimiser/task). What differs by
task (targets, losses, metrics, scores) lives in fluxseg.tasks; multi-process
start-up in fluxseg.runtime.distributed.
"""
