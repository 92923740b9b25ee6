"""Project 1 basics: gradient descent, polynomial, logistic and softmax regression, convolution arithmetic, a CNN."""

from vclib.basics.cnn import DigitCNN
from vclib.basics.conv_arithmetic import CONV_CASES, conv_output_size, conv_transpose_output_size
from vclib.basics.gradient_descent import gradient_descent
from vclib.basics.logistic import binary_cross_entropy_with_logits, sigmoid
from vclib.basics.regression import PolynomialRegression, polynomial_features
from vclib.basics.softmax import cross_entropy, log_softmax, softmax

__all__ = [
    "CONV_CASES",
    "DigitCNN",
    "PolynomialRegression",
    "binary_cross_entropy_with_logits",
    "conv_output_size",
    "conv_transpose_output_size",
    "cross_entropy",
    "gradient_descent",
    "log_softmax",
    "polynomial_features",
    "sigmoid",
    "softmax",
]
