"""`colorize prep-dataset`: sources (folders, archives, lists, downloads) to filtered, split, sharded training data.

Built on photos in and out and the colour core (for the ab prior).
"""
