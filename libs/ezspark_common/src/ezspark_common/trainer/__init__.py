"""A training run: its state machine (``training``), the generation loop every trainer
runs (``generations``), a generation cut into tasks and merged back (``tasks``), the
embedded trainer's evaluators (``evaluators``) and run folder (``embedded``,
``checkpoints``), and the hand-over of a local run to the cluster (``handoff``).
``ezspark train``, the evolver and the evaluator service build on it."""
