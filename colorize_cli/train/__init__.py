"""`colorize train`: recipes per model, the training loop, data loading, validation, export of shipped weights.

The top stage: it uses every stage below (prep for the data format, evaluate for plots and metrics).
"""
