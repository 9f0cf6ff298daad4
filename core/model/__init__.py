"""The model interface: ``ModelWrapper`` (load, preprocess, predict, postprocess), typed detections,
safe image decoding, label maps and drawing detections on an image. Nothing here knows a runtime."""
