"""MAX Object Detector's API, unchanged: the ``/model`` namespace (metadata, labels, predict, annotate)."""
