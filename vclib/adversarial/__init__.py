"""Project 4: adversarial attacks (FGSM, PGD), robust accuracy and adversarial training."""

from vclib.adversarial.attacks import fgsm, input_gradient, pgd, pgd_step
from vclib.adversarial.evaluation import accuracy_under_attack
from vclib.adversarial.training import adversarial_fit, adversarial_step
from vclib.train import eval_mode

__all__ = [
    "accuracy_under_attack", "adversarial_fit", "adversarial_step", "eval_mode", "fgsm", "input_gradient", "pgd",
    "pgd_step",
]
