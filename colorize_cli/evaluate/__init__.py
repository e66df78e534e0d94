"""`colorize evaluate`: models against ground truth on a folder of colour photos, with a report and contact sheets.

Built on the batch job (the Colorizer) and the colour core's metrics.
"""
