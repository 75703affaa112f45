"""Foundations every other package uses: errors and exit codes, atomic writes, messages on
stderr (`report`), the pipeline record, default output names, the spec grammar, seeding.

Nothing here imports TensorFlow or any other `reuse` package.
"""
