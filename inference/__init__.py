"""NightScan inference: audio decoding, log-mel models, synthetic data, training, safe weights.

Pure ML layer: never imports the app packages, and importing this package does not import torch
(submodules that need torch import it themselves).
"""
