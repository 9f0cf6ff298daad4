"""The Open Inference Protocol v2 (KServe v2 / Triton) over REST, with the binary tensor data
extension: ``/v2``, ``/v2/health/*``, ``/v2/models/{name}[/versions/{v}]`` (metadata, ready, infer).
``tensors`` reads and writes the wire format; ``endpoints`` holds the routes."""
