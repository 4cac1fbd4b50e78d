"""Builders the tests share, one of each: people, ground truth and predictions (:mod:`.poses`),
tiny checkpoints (:mod:`.checkpoints`) and composed Hydra configs (:mod:`.configs`)."""
