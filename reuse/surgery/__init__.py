"""Model surgery: the layer tree, layer selectors, freezing, cuts, new heads, custom objects.

precision.py sets mixed-precision dtype policies on a built model.

Everything that takes a Keras model apart or puts a piece on top of it lives here; nothing here
trains.
"""
