"""Inference engines: each turns a ``uint8 [1,H,W,3]`` image into raw SSD outputs.

Engines are imported lazily so that a TFLite worker never imports TensorFlow.
"""
