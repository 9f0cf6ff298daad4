"""Building detectors (``factory``, the one place) and loading them in the background (``holder``)."""
