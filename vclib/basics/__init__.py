"""Project 1 basics: gradient descent, polynomial, logistic and softmax regression, convolution arithmetic, a CNN;
plain and residual nets of any depth, parameter and MAC counts (paper discussion 1)."""

from vclib.basics.cnn import DigitCNN
from vclib.basics.complexity import count_macs, count_parameters
from vclib.basics.conv_arithmetic import CONV_CASES, conv_output_size, conv_transpose_output_size
from vclib.basics.depth import DepthBlock, DepthNet, gradient_norms
from vclib.basics.gradient_descent import gradient_descent
from vclib.basics.logistic import binary_cross_entropy_with_logits, sigmoid
from vclib.basics.regression import PolynomialRegression, polynomial_features
from vclib.basics.softmax import cross_entropy, log_softmax, softmax

__all__ = [
    "CONV_CASES",
    "DepthBlock",
    "DepthNet",
    "DigitCNN",
    "PolynomialRegression",
    "binary_cross_entropy_with_logits",
    "conv_output_size",
    "conv_transpose_output_size",
    "count_macs",
    "count_parameters",
    "cross_entropy",
    "gradient_descent",
    "gradient_norms",
    "log_softmax",
    "polynomial_features",
    "sigmoid",
    "softmax",
]
