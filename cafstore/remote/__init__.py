"""Remotes: push, pull and clone runs between stores, the way git shares commits (docs/remotes.md).

Objects are content-addressed and records immutable, so sharing a run is
sending the objects the other side lacks, then moving its refs. One module
per job: ``transport`` (the verbs; ``dirtransport``, ``s3transport``),
``packs`` (small objects together), ``state`` (what a remote holds, and the
local cache of it), ``runs`` (a run's identity across stores and its
document), ``closure``, ``refcas`` (refs by compare-and-swap, tags merged),
``push``, ``pull``, ``rgc`` (gc of a remote), ``config`` (named remotes).
Nothing here is imported by ``import cafstore``.
"""
