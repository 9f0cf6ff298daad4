"""The verified supply chain of model files: catalog, download, extraction, digests, install,
manifest and the files derived from fetched ones (``optimize``)."""
