"""Project 4: adversarial attacks (FGSM, PGD), robust accuracy and adversarial training."""

from vclib.adversarial.attacks import eval_mode, fgsm, input_gradient, pgd
from vclib.adversarial.evaluation import accuracy_under_attack
from vclib.adversarial.training import adversarial_fit

__all__ = ["accuracy_under_attack", "adversarial_fit", "eval_mode", "fgsm", "input_gradient", "pgd"]
