"""tokclf.training.epoch_choice: the chosen evaluation against the last one, from a log history."""

from tokclf.training.epoch_choice import epoch_choice

HISTORY = [
    {"loss": 1.0, "step": 5, "epoch": 0.5},
    {"eval_f1": 0.61, "step": 10, "epoch": 1.0},
    {"eval_f1": 0.74, "step": 20, "epoch": 2.0},
    {"loss": 0.3, "step": 25, "epoch": 2.5},
    {"eval_f1": 0.70, "step": 30, "epoch": 3.0},
]


def test_best_checkpoint_before_the_last_epoch():
    choice = epoch_choice(HISTORY, "/tmp/run/checkpoints/checkpoint-20")
    assert choice["chosen"] == {"epoch": 2.0, "step": 20, "validation_f1": 0.74}
    assert choice["last"] == {"epoch": 3.0, "step": 30, "validation_f1": 0.70}
    assert choice["chose_last"] is False
    assert abs(choice["validation_f1_gain"] - 0.04) < 1e-9


def test_no_checkpoint_means_the_last_and_no_evaluation_means_none():
    choice = epoch_choice(HISTORY, None)
    assert choice["chosen"] == choice["last"] and choice["chose_last"] and choice["validation_f1_gain"] == 0
    assert epoch_choice([{"loss": 1.0, "step": 1}], None) is None
