"""The batch job of `colorize`: the Colorizer (a model on L, chroma at full resolution), planned jobs, diagnostics.

Built on the model zoo, photos in and out and the colour core.
"""
