"""Batches on a Ray cluster (``--executor ray``): chunk planning (:mod:`.chunks`), the workers'
tasks (:mod:`.work`), joining chunk outputs (:mod:`.segments`) and the driver (:mod:`.executor`).
See docs/cluster.md."""
