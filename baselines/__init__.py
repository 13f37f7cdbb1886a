"""Reimplemented lightweight-SR baselines, one module per architecture. Imports only torch and lmfn blocks.

Every module that contributes models to the zoo defines a module-level ``MODEL_SPECS`` list of plain dicts
(see ``harness.zoo.ModelSpec`` for the keys); the zoo discovers them, so adding a file is enough.
"""
