"""``docker rmi`` as moby's ImageDelete (issue 4).

A name is untagged (with the digest names of its repository when it was that repository's last
tag), and the image is deleted once no name is left; an ID deletes the image, refused without
``force`` when it is named in more than one repository. Deleting removes every blob and
extracted layer that no other image uses. There is no container tracking here: removing an
image that a running container uses is not refused (dockerd would answer 409), so the executors
keep their own reference to the layer directories they mount.
"""

from __future__ import annotations

from shoal.errors import Conflict
from shoal.image.catalog import Catalog
from shoal.image.reference import Reference

__all__ = ["Answer", "delete_image"]

Answer = list[dict[str, str]]


def _untag(catalog: Catalog, ref: Reference, answer: Answer) -> None:
    catalog.store.untag(ref)
    answer.append({"Untagged": ref.shown})


def delete_image(catalog: Catalog, name: str, force: bool = False) -> Answer:
    """Untag or delete ``name``; returns ``[{"Untagged": ...}, {"Deleted": ...}]``."""
    with catalog.lock:
        ident, record, refs, matched = catalog.find(name)
        names = catalog.names()
        records = {record, *(names[r] for r in refs if r in names)}
        answer: Answer = []
        remaining = [*refs]
        if matched is not None:
            _untag(catalog, matched, answer)
            remaining.remove(matched)
            if not matched.digest and not any(
                    r.tag and not r.digest and r.repository == matched.repository for r in remaining):
                for ref in [r for r in remaining if r.digest and r.repository == matched.repository]:
                    _untag(catalog, ref, answer)
                    remaining.remove(ref)
            if remaining:
                return answer
        else:
            tags = [r for r in refs if r.tag and not r.digest]
            if len(tags) <= 1 and len({r.repository for r in refs}) <= 1:
                for ref in refs:
                    _untag(catalog, ref, answer)
                remaining = []
            if remaining and not force:
                raise Conflict(f"conflict: unable to delete {ident.removeprefix('sha256:')[:12]} "
                               "(must be forced) - image is referenced in multiple repositories")
            for ref in remaining:
                _untag(catalog, ref, answer)
        untagged = catalog.untagged()
        if untagged.pop(ident, None) is not None:
            catalog.save_untagged(untagged)
        used = catalog.used_blobs()
        for rec in records:
            for digest in (rec.manifest, rec.config, *rec.layers):
                if digest in used:
                    continue
                catalog.store.remove_blob(digest)
                if digest in rec.layers:
                    catalog.store.remove_layer(digest)
        answer.append({"Deleted": ident})
        return answer
