"""The SSD-MobileNet detector and the engines that run its network (TensorFlow, LiteRT)."""
