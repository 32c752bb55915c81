"""The I/O layer: the only package that writes files. Every file is written atomically."""
