"""Photos in and out: decoding with metadata, finding images in folders, atomic writes.

Built on the colour core only; nothing here knows about models.
"""
